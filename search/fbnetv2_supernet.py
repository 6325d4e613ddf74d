"""Registers FBNetV2's masked supernet with `search.supernet` (loaded as one of its extensions).

The supernet itself lives in `search.dmasking`; importing it runs its
`register_supernet` lines for the `fbnetv2` and `fbnetv2-cifar` spaces.
"""

from search.dmasking import DMaskingSupernet, build_dmasking  # noqa: F401  (registers on import)

__all__ = ["DMaskingSupernet", "build_dmasking"]
