"""Fashion-MNIST from its four idx files (gzip-compressed or plain), read with numpy.

Debian's `dataset-fashion-mnist` package installs them under
/usr/share/datasets/fashion-mnist/; `fashion-mnist:DIR` reads the same four
files from elsewhere.  No torchvision and no download: the idx format is a
4-byte magic (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the data.  Every malformed file (wrong
magic, truncated, trailing bytes, bad gzip) is a `DataError`, one line.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from hwnas.search.space import InputError

__all__ = ["FASHION_DIR", "FASHION_FILES", "FASHION_PACKAGE", "IdxError", "parse_idx", "read_idx",
           "read_fashion_mnist"]

FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
#: split → (images, labels) file stems; `.gz` or the plain file is accepted.
FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_UBYTE = 0x08


class IdxError(InputError):
    """An idx file that is not what its name says (bad magic, truncated, wrong shape)."""


def parse_idx(raw: bytes, name: str = "idx data") -> np.ndarray:
    """The uint8 array an idx byte string holds; `name` labels the error."""
    if len(raw) < 4:
        raise IdxError(f"{name}: not an idx file ({len(raw)} bytes, shorter than its 4-byte magic)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or not 1 <= raw[3] <= 4:
        raise IdxError(f"{name}: not an unsigned-byte idx file (magic {raw[:4].hex()}, expected 000008 and 1-4 dims)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{name}: truncated idx header ({len(raw)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    need = int(np.prod(shape, dtype=np.int64))
    have = len(raw) - header
    if have != need:
        what = "truncated" if have < need else "has trailing bytes"
        raise IdxError(f"{name}: {what}: header says {'x'.join(map(str, shape))} = {need} bytes, file holds {have}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()  # writable, for torch


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file; gzip-compressed when it starts with gzip's magic, whatever its name."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxError(f"cannot read {path}: {exc}") from None
    return parse_idx(raw, str(path))


def _find(root: Path, stem: str) -> Path | None:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    return None


def read_fashion_mnist(root: Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """split → (images N x 28 x 28 uint8, labels N int64), checked against each other."""
    explicit = root is not None
    root = Path(root) if explicit else FASHION_DIR
    files = {split: (_find(root, img), _find(root, lab)) for split, (img, lab) in FASHION_FILES.items()}
    missing = [stem for split, pair in files.items() for stem, f in zip(FASHION_FILES[split], pair) if f is None]
    if missing:
        if explicit:
            raise IdxError(f"fashion-mnist:{root} lacks {', '.join(missing)} (.gz or plain idx)")
        raise IdxError(f"Fashion-MNIST not found in {root}: install Debian's {FASHION_PACKAGE} "
                       f"(apt-get install {FASHION_PACKAGE}) or give fashion-mnist:DIR with its four idx files")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, (img_path, lab_path) in files.items():
        assert img_path is not None and lab_path is not None
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or labels.ndim != 1:
            raise IdxError(f"{img_path}: expected N x H x W images and N labels, got shapes {images.shape} "
                           f"and {labels.shape}")
        if len(images) != len(labels) or len(labels) == 0:
            raise IdxError(f"{img_path}: {len(images)} images but {len(labels)} labels in {lab_path}")
        if int(labels.max()) > 9:
            raise IdxError(f"{lab_path}: label {int(labels.max())} beyond Fashion-MNIST's 10 classes")
        out[split] = (images, labels.astype(np.int64))
    return out
