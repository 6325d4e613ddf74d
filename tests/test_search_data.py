"""Data loaders: bundled digits, ImageFolder, CIFAR binary batches, and the errors users see."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from hwnas.search.data import load_data
from hwnas.search.space import InputError


def test_digits_upsampled_three_channels():
    d = load_data("digits", 32)
    assert d.train_x.shape[1:] == (3, 32, 32) and d.train_x.dtype == torch.uint8
    assert len(d.train_y) + len(d.test_y) == 1797 and d.num_classes == 10
    assert int(d.train_x.max()) > 200  # scaled from 0..16 to 0..255
    assert torch.equal(load_data("digits", 32).train_y, d.train_y)  # fixed split


def _write_images(root, classes=("cat", "dog"), n=3, size=12):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            arr = np.full((size, size, 3), 40 * c + i, dtype=np.uint8)
            Image.fromarray(arr).save(root / name / f"{i}.png")


def test_imagefolder_flat_and_split(tmp_path):
    _write_images(tmp_path / "flat", n=5)
    d = load_data(f"imagefolder:{tmp_path / 'flat'}", 16)
    assert d.num_classes == 2 and d.train_x.shape[1:] == (3, 16, 16)
    assert len(d.train_y) + len(d.test_y) == 10
    _write_images(tmp_path / "s" / "train")
    _write_images(tmp_path / "s" / "val", n=2)
    d = load_data(f"imagefolder:{tmp_path / 's'}", 8)
    assert len(d.train_y) == 6 and len(d.test_y) == 4


def test_imagefolder_bad_image_and_empty(tmp_path):
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "x" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read image"):
        load_data(f"imagefolder:{tmp_path / 'a'}", 8)
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError, match="no class subdirectories"):
        load_data(f"imagefolder:{tmp_path / 'b'}", 8)


def _cifar_records(n, label_bytes, seed=0):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, size=(n, label_bytes + 3072), dtype=np.uint8)
    rows[:, :label_bytes] = rng.integers(0, 10, size=(n, label_bytes))
    return rows


def test_cifar10_binary(tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    for i in range(1, 3):
        _cifar_records(4, 1, i).tofile(root / f"data_batch_{i}.bin")
    test = _cifar_records(3, 1, 9)
    test.tofile(root / "test_batch.bin")
    d = load_data(f"cifar10:{tmp_path}", 32)
    assert len(d.train_y) == 8 and len(d.test_y) == 3 and d.num_classes == 10
    assert torch.equal(d.test_x[0], torch.as_tensor(test[0, 1:].reshape(3, 32, 32)))
    assert d.test_y.tolist() == test[:, 0].tolist()


def test_cifar100_uses_fine_label(tmp_path):
    rows = _cifar_records(4, 2)
    rows[:, 1] = [5, 50, 99, 0]
    rows.tofile(tmp_path / "train.bin")
    rows.tofile(tmp_path / "test.bin")
    d = load_data(f"cifar100:{tmp_path}", 16)
    assert d.train_y.tolist() == [5, 50, 99, 0] and d.train_x.shape[-1] == 16


def test_cifar_wrong_format_and_pickled(tmp_path):
    (tmp_path / "data_batch_1.bin").write_bytes(b"\x00" * 100)
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 3073)
    with pytest.raises(InputError, match="not a CIFAR binary batch"):
        load_data(f"cifar10:{tmp_path}", 32)
    pk = tmp_path / "py"
    pk.mkdir()
    (pk / "data_batch_1").write_bytes(pickle.dumps({"data": [1]}))
    with pytest.raises(InputError, match="pickled python"):
        load_data(f"cifar10:{pk}", 32)


@pytest.mark.parametrize("spec,msg", [
    ("mnist", "unknown data"),
    ("cifar10:", "needs a path"),
    ("imagefolder:/no/such/dir", "not found"),
])
def test_bad_specs(spec, msg):
    with pytest.raises(InputError, match=msg):
        load_data(spec, 32)
