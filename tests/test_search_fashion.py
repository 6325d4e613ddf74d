"""Fashion-MNIST from idx files: tiny synthetic sets, gzip and plain, and every malformed file one line."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwnas.search.data import load_data
from hwnas.search.idx import FASHION_DIR, FASHION_FILES, IdxError, parse_idx, read_fashion_mnist, read_idx
from hwnas.search.space import InputError


def idx_bytes(a: np.ndarray) -> bytes:
    a = np.asarray(a, dtype=np.uint8)
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_fashion(root: Path, n_train: int = 20, n_test: int = 10, compress: bool = True, seed: int = 0) -> Path:
    """The four Fashion-MNIST files with random 28x28 images and labels 0..9."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        img_stem, lab_stem = FASHION_FILES[split]
        for stem, arr in ((img_stem, rng.integers(0, 256, (n, 28, 28))), (lab_stem, np.arange(n) % 10)):
            raw = idx_bytes(arr)
            if compress:
                (root / f"{stem}.gz").write_bytes(gzip.compress(raw))
            else:
                (root / stem).write_bytes(raw)
    return root


@pytest.mark.parametrize("compress", [True, False])
def test_reads_gzip_and_plain_idx_at_the_space_resolution(tmp_path, compress):
    root = write_fashion(tmp_path / "f", compress=compress)
    d = load_data(f"fashion-mnist:{root}", 32)
    assert d.train_x.shape == (20, 3, 32, 32) and d.test_x.shape == (10, 3, 32, 32)
    assert d.num_classes == 10 and d.train_y.tolist() == [i % 10 for i in range(20)]
    assert d.name == f"fashion-mnist:{root}"
    same = load_data(f"fashion-mnist:{root}", 28)
    raw = read_idx(root / (FASHION_FILES["train"][0] + (".gz" if compress else "")))
    assert np.array_equal(same.train_x[:, 0].numpy(), raw)  # no resize at 28: the bytes themselves
    assert d.limited(5).train_x.shape[0] == 5


def test_absent_files_name_the_package_and_the_dir_form(tmp_path, monkeypatch):
    import hwnas.search.idx as idx

    monkeypatch.setattr(idx, "FASHION_DIR", tmp_path / "nowhere")
    with pytest.raises(InputError, match="dataset-fashion-mnist.*fashion-mnist:DIR"):
        load_data("fashion-mnist", 32)
    (tmp_path / "partial").mkdir()
    write_fashion(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(InputError, match="lacks t10k-labels-idx1-ubyte"):
        load_data(f"fashion-mnist:{tmp_path / 'partial'}", 32)


def test_mismatched_counts_and_labels_out_of_range(tmp_path):
    root = write_fashion(tmp_path / "f", compress=False)
    (root / FASHION_FILES["train"][1]).write_bytes(idx_bytes(np.arange(19) % 10))
    with pytest.raises(IdxError, match="20 images but 19 labels"):
        read_fashion_mnist(root)
    (root / FASHION_FILES["train"][1]).write_bytes(idx_bytes(np.full(20, 12)))
    with pytest.raises(IdxError, match="label 12"):
        read_fashion_mnist(root)
    (root / FASHION_FILES["train"][0]).write_bytes(idx_bytes(np.zeros(20)))
    with pytest.raises(IdxError, match="N x H x W"):
        read_fashion_mnist(root)


def test_wrong_magic_truncation_and_bad_gzip_are_one_line(tmp_path):
    good = idx_bytes(np.zeros((2, 3, 3)))
    with pytest.raises(IdxError, match="magic"):
        parse_idx(b"\x00\x00\x0d\x03" + good[4:])  # float idx, not ubyte
    with pytest.raises(IdxError, match="truncated"):
        parse_idx(good[:-1])
    with pytest.raises(IdxError, match="trailing"):
        parse_idx(good + b"\x00")
    f = tmp_path / "x.gz"
    f.write_bytes(gzip.compress(good)[:-6])
    with pytest.raises(IdxError, match="cannot read"):
        read_idx(f)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64))
def test_random_bytes_parse_or_fail_with_idx_error(raw):
    try:
        a = parse_idx(raw)
    except IdxError as exc:
        assert "\n" not in str(exc)
        return
    assert a.dtype == np.uint8 and a.size == len(raw) - 4 - 4 * a.ndim  # accepted only when exactly consistent


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=3), st.data())
def test_every_truncation_of_a_valid_file_is_refused(shape, data):
    raw = idx_bytes(np.ones(shape))
    cut = data.draw(st.integers(0, len(raw) - 1))
    if int(np.prod(shape)) == 0 and cut >= 4 + 4 * len(shape):
        return  # an empty array has no data bytes to lose past its header
    with pytest.raises(IdxError):
        parse_idx(raw[:cut])
    assert parse_idx(raw).shape == tuple(shape)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=4, max_size=4).filter(lambda m: not (m[:3] == b"\x00\x00\x08" and 1 <= m[3] <= 4)))
def test_any_wrong_magic_is_refused(magic):
    with pytest.raises(IdxError, match="magic"):
        parse_idx(magic + idx_bytes(np.zeros((1, 2)))[4:])


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
@pytest.mark.slow
def test_the_installed_debian_files_read():
    splits = read_fashion_mnist()
    assert splits["train"][0].shape == (60000, 28, 28) and splits["test"][0].shape == (10000, 28, 28)
    assert sorted(set(splits["test"][1].tolist())) == list(range(10))
