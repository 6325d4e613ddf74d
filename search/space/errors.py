"""The errors a user's input causes: a leaf that every part (and `jsonsafe`) may import."""

from __future__ import annotations

__all__ = ["InputError", "ArchParseError"]


class InputError(ValueError):
    """A mistake in what a user handed us (a name, a file, an option).

    The CLI turns it into one line on stderr and exit code 2; every part of
    hwnas raises a subclass of it for bad input, never for its own bugs.
    """


class ArchParseError(InputError):
    """An architecture string that does not describe an architecture of the space."""
