"""Image data for the search and for training: digits, Fashion-MNIST, ImageFolder, CIFAR binary batches.

`load_data(spec, resolution)` returns train and test images as uint8 NCHW
tensors at the space's input size (3 channels), labels as int64, and the
number of classes.  Nothing downloads: `digits` is scikit-learn's bundled
8x8 digits (upsampled), `fashion-mnist` Debian's dataset-fashion-mnist idx files
(hwnas.search.idx), the others read files the user already has.
torchvision cannot be installed here, so ImageFolder and the CIFAR binary
format are read by hand with PIL and numpy (a few lines each).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from hwnas.search.space import InputError

__all__ = ["Data", "load_data", "normalize", "DATA_HELP"]

DATA_HELP = "digits | fashion-mnist[:DIR] | imagefolder:PATH | cifar10:PATH | cifar100:PATH (binary batches)"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff"}


class DataError(InputError):
    """A data set that is missing or not in the expected format."""


@dataclass(frozen=True)
class Data:
    """Images (uint8, N x 3 x R x R) and labels of a train and a test split."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int

    def limited(self, n: int | None) -> "Data":
        """The first `n` training images (and as many test images, at most): quick runs."""
        if not n:
            return self
        if n < 1:
            raise InputError(f"`limit` must be positive, got {n}")
        return Data(self.name, self.train_x[:n], self.train_y[:n], self.test_x[:n], self.test_y[:n],
                    self.num_classes)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 images → float in [-1, 1] (per-batch, so the stored set stays small)."""
    return x.float().div_(127.5).sub_(1.0)


def _resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    y = F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear", align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8)


def _split(x: torch.Tensor, y: torch.Tensor, test_fraction: float = 0.2, seed: int = 0):
    """A fixed, seeded train/test split for sets that ship without one."""
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, int(round(len(y) * test_fraction)))
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


def load_digits_data(resolution: int) -> Data:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32) * (255.0 / 16.0)  # 0..16 → 0..255
    x = images.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    x = _resize(x.round().to(torch.uint8), resolution)
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    return Data("digits", *_split(x, y), num_classes=10)


def _read_folder(root: Path, resolution: int, classes: list[str] | None = None):
    from PIL import Image, UnidentifiedImageError

    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = classes or found
    if not classes:
        raise DataError(f"{root} has no class subdirectories (expected PATH/<class>/<image>)")
    xs, ys = [], []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as im:
                    im = im.convert("RGB").resize((resolution, resolution), Image.BILINEAR)
                    xs.append(np.asarray(im, dtype=np.uint8))
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"cannot read image {f}: {exc}") from None
            ys.append(label)
    if not xs:
        raise DataError(f"no images found under {root} (extensions: {', '.join(sorted(_IMAGE_SUFFIXES))})")
    x = torch.as_tensor(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
    return x, torch.as_tensor(ys, dtype=torch.int64), classes


def load_imagefolder(path: Path, resolution: int) -> Data:
    """PATH/<class>/*.png, or PATH/train/<class>/… with PATH/val (or test)/<class>/…."""
    train_dir = path / "train"
    test_dir = next((path / d for d in ("val", "test") if (path / d).is_dir()), None)
    if train_dir.is_dir() and test_dir is not None:
        x, y, classes = _read_folder(train_dir, resolution)
        tx, ty, _ = _read_folder(test_dir, resolution, classes)
        return Data(f"imagefolder:{path}", x, y, tx, ty, len(classes))
    x, y, classes = _read_folder(path, resolution)
    if len(y) < 2:
        raise DataError(f"{path} holds a single image; need at least two to split train/test")
    return Data(f"imagefolder:{path}", *_split(x, y), num_classes=len(classes))


def _read_cifar_bin(files: list[Path], label_bytes: int, label_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    record = label_bytes + 3072
    xs, ys = [], []
    for f in files:
        raw = np.fromfile(f, dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise DataError(
                f"{f} is not a CIFAR binary batch ({raw.size} bytes is not a multiple of {record}); "
                "use the binary version (e.g. cifar-10-binary.tar.gz), not the pickled python one"
            )
        rows = raw.reshape(-1, record)
        ys.append(rows[:, label_index].astype(np.int64))
        xs.append(rows[:, label_bytes:].reshape(-1, 3, 32, 32))
    return torch.as_tensor(np.concatenate(xs)), torch.as_tensor(np.concatenate(ys))


def load_cifar(path: Path, resolution: int, classes: int) -> Data:
    """CIFAR-10 (`data_batch_1.bin`…, `test_batch.bin`) or CIFAR-100 (`train.bin`, `test.bin`)."""
    sub = "cifar-10-batches-bin" if classes == 10 else "cifar-100-binary"
    if (path / sub).is_dir():
        path = path / sub
    if classes == 10:
        train = sorted(path.glob("data_batch_*.bin"))
        test = [path / "test_batch.bin"]
        label_bytes, label_index = 1, 0
    else:
        train, test = [path / "train.bin"], [path / "test.bin"]
        label_bytes, label_index = 2, 1  # coarse label, then fine label: use the fine one
    missing = [f.name for f in (train or [path / "data_batch_1.bin"]) + test if not f.is_file()]
    if missing:
        pickled = (path / "data_batch_1").is_file() or (path / "train").is_file()
        hint = (" — these look like the pickled python batches; hwnas reads only the binary version"
                if pickled else "")
        raise DataError(f"cifar{classes} data at {path} lacks {', '.join(missing)}{hint}")
    x, y = _read_cifar_bin(train, label_bytes, label_index)
    tx, ty = _read_cifar_bin(test, label_bytes, label_index)
    if int(max(y.max(), ty.max())) >= classes:
        raise DataError(f"{path}: labels go beyond {classes - 1}; is this really cifar{classes}?")
    return Data(f"cifar{classes}:{path}", _resize(x, resolution), y, _resize(tx, resolution), ty, classes)


def load_fashion_mnist(root: Path | None, resolution: int) -> Data:
    """Fashion-MNIST's 60k/10k split, grey 28x28 resized to `resolution` and repeated over 3 channels."""
    from hwnas.search.idx import read_fashion_mnist

    splits = read_fashion_mnist(root)

    def images(a: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(a).unsqueeze(1)
        parts = [_resize(x[i:i + 8192], resolution) for i in range(0, len(x), 8192)]  # bounded float buffer
        return torch.cat(parts).expand(-1, 3, -1, -1)

    (x, y), (tx, ty) = splits["train"], splits["test"]
    name = "fashion-mnist" if root is None else f"fashion-mnist:{root}"
    return Data(name, images(x), torch.as_tensor(y), images(tx), torch.as_tensor(ty), 10)


def load_data(spec: str, resolution: int) -> Data:
    """Parse a data spec (see DATA_HELP) and load it at `resolution`."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "digits":
        return load_digits_data(resolution)
    if kind in ("fashion-mnist", "fashion_mnist", "fashionmnist"):
        return load_fashion_mnist(Path(rest).expanduser() if rest else None, resolution)
    if kind not in ("imagefolder", "cifar10", "cifar100"):
        raise InputError(f"unknown data {spec!r}; expected {DATA_HELP}")
    if not rest:
        raise InputError(f"data {kind} needs a path: {kind}:PATH")
    path = Path(rest).expanduser()
    if not path.is_dir():
        raise DataError(f"data path not found (or not a directory): {path}")
    if kind == "imagefolder":
        return load_imagefolder(path, resolution)
    return load_cifar(path, resolution, 10 if kind == "cifar10" else 100)
