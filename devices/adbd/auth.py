"""Authorized keys for devices/adbd: Android's adbkey.pub format and signature checks.

An adbkey.pub line is base64 of Android's 524-byte RSAPublicKey struct (u32 word count 64,
u32 n0inv, 256-byte modulus LE, 256-byte rr LE, u32 exponent) plus " user@host". Clients
sign the daemon's 20-byte token as if it were a SHA-1 digest (RSA PKCS#1 v1.5).
"""

from __future__ import annotations

import base64
import binascii
import struct
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from hwnas.search.space import InputError

__all__ = ["decode_android_pubkey", "load_authorized_keys", "verify_token", "same_key"]

_PUBKEY = struct.Struct("<LL256s256sL")


def decode_android_pubkey(text: str) -> rsa.RSAPublicKey:
    """`base64(struct) user@host` (an adbkey.pub line) → an RSA public key."""
    blob = text.strip().split()[0] if text.strip() else ""
    try:
        raw = base64.b64decode(blob, validate=True)
        words, _n0inv, modulus, _rr, exponent = _PUBKEY.unpack(raw)
    except (binascii.Error, struct.error, ValueError) as exc:
        raise ValueError(f"not an Android RSA public key ({exc})") from None
    if words != 64:
        raise ValueError(f"not a 2048-bit Android RSA public key (word count {words})")
    return rsa.RSAPublicNumbers(exponent, int.from_bytes(modulus, "little")).public_key()


def load_authorized_keys(path: str | Path) -> list[rsa.RSAPublicKey]:
    """Every key line of an authorized-keys file (adbkey.pub format, one per line)."""
    p = Path(path).expanduser()
    try:
        lines = p.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"keys file {p} is not text (expected adbkey.pub lines)") from None
    except OSError as exc:
        raise InputError(f"cannot read keys file {p}: {exc.strerror or exc}") from None
    keys = []
    for i, line in enumerate(lines, 1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                keys.append(decode_android_pubkey(line))
            except ValueError as exc:
                raise InputError(f"{p}:{i}: {exc}") from None
    if not keys:
        raise InputError(f"keys file {p} holds no public key")
    return keys


def verify_token(keys: list[rsa.RSAPublicKey], token: bytes, signature: bytes) -> bool:
    # Clients sign the 20-byte token as if it were a SHA-1 digest (PKCS#1 v1.5).
    for key in keys:
        try:
            key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def same_key(a: rsa.RSAPublicKey, b: rsa.RSAPublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()
