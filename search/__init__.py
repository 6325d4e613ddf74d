"""Search spaces, blocks, supernets (FBNet DNAS, FBNetV2 DMaskingNAS), training and export.

`hwnas.search.space` is the shared vocabulary every part may import.  This
`__init__` imports the space definitions (`fbnet.space`, `fbnetv2.space`,
...), which register themselves with the leaf registry; they are plain data
and need no torch.  The rest of this package needs torch and is imported on
demand.
"""

from hwnas.search.fbnet import space as _fbnet_space  # noqa: F401  (registers fbnet, fbnet-cifar, FBNet-A/B/C)
from hwnas.search.fbnetv2 import presets as _fbnetv2_presets  # noqa: F401  (FBNetV2-F*, FBNetV2-L*)
from hwnas.search.fbnetv2 import small as _fbnetv2_small  # noqa: F401  (fbnetv2-cifar)
from hwnas.search.fbnetv2 import space as _fbnetv2_space  # noqa: F401  (fbnetv2)
