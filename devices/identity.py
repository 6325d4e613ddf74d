"""Device identities that name a device without giving away its serial number.

Why: stores, latency models and reports travel (shared with a team, attached
to a paper); `ro.serialno` and `/etc/machine-id` are stable identifiers of a
person's phone or machine, and Android treats the serial as private.  The
identity only needs to tell devices apart and be the same on every host that
profiles the same device, so it carries a salted hash of the serial instead.

The salt is `HWNAS_ID_SALT` where set (a team that wants its identities
unlinkable to anyone else's sets one secret value on all its hosts), else a
fixed salt, which still keeps the serial out of the files.  The serial a user
types in a URI (`adb://SERIAL`) is theirs and is kept as typed.
"""

from __future__ import annotations

import hashlib
import hmac
import os

__all__ = ["anonymize", "DEFAULT_SALT"]

DEFAULT_SALT = "hwnas-device-identity-v1"


def anonymize(value: str, salt: str | None = None) -> str:
    """`id-` and 12 hex digits of HMAC-SHA256(salt, value): stable, short, not reversible to the serial."""
    key = (salt if salt is not None else os.environ.get("HWNAS_ID_SALT") or DEFAULT_SALT).encode()
    return "id-" + hmac.new(key, value.strip().encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:12]
