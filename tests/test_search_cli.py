"""`hwnas search | train | export` as a user runs them, with a real fitted latency model file."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hwnas.latency_models.io import save_model
from hwnas.latency_models.network import fit_latency_model
from hwnas.search.count import count_block
from hwnas.search.space import get_space


def _model(path, space: str, per_mmac: float) -> None:
    """A latency model fitted on synthetic block timings (ms proportional to MACs, k5 dearer)."""
    rows = [{"block_json": s.to_json(),
             "median_ms": 0.01 + count_block(s).macs / 1e6 * per_mmac * (1.5 if s.kernel == 5 else 1.0)}
            for s in get_space(space).unique_blocks()]
    save_model(fit_latency_model(pd.DataFrame(rows), None, space, "synthetic-cpu", n_estimators=5), path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    _model(d / "cifar.json", "fbnet-cifar", 0.002)
    _model(d / "fbnet.json", "fbnet", 0.002)
    return d


#: one thread: on a loaded 2-core VM, two intra-op threads per process mostly contend.
ONE = {"OMP_NUM_THREADS": "1"}
QUICK = ["--data", "digits", "--limit", "80", "--batch-size", "16", "--epochs", "1", "--warmup-epochs", "0",
         "--candidates", "2"]


def test_search_refuses_model_of_another_space(cli, models, tmp_path):
    p = cli("search", "--space", "fbnet-cifar", "--latency", str(models / "fbnet.json"), "--out", str(tmp_path / "r"),
            *QUICK)
    assert p.returncode == 2 and "'fbnet'" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_search_bad_data_and_low_target(cli, models, tmp_path):
    base = ["search", "--space", "fbnet-cifar", "--latency", str(models / "cifar.json"), "--out", str(tmp_path / "r")]
    p = cli(*base, "--data", f"cifar10:{tmp_path / 'missing'}")
    assert p.returncode == 2 and "not found" in p.stderr and "Traceback" not in p.stderr
    p = cli(*base, *QUICK, "--target-ms", "0.0001")
    assert p.returncode == 2 and "fastest architecture" in p.stderr and "ms predicted" in p.stderr
    p = cli(*base, "--latency", str(tmp_path / "nope.json"), *QUICK)
    assert p.returncode == 2 and "not found" in p.stderr
    for flag in ("--arch-lr", "--weight-lr"):
        p = cli(*base, *QUICK, flag, "0")
        assert p.returncode == 2 and flag in p.stderr and "Traceback" not in p.stderr
    p = cli(*base, *QUICK, "--finalists", "-1")
    assert p.returncode == 2 and "finalists" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_bad_fashion_idx_and_empty_width_exit_2_and_write_nothing(cli, models, tmp_path):
    from test_search_fashion import write_fashion

    from hwnas.search.idx import FASHION_FILES

    root = write_fashion(tmp_path / "f", compress=False)
    (root / FASHION_FILES["test"][0]).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 5)
    out = tmp_path / "r"
    base = ["search", "--space", "fbnet-cifar", "--latency", str(models / "cifar.json"), "--out", str(out), *QUICK]
    p = cli(*base, "--data", f"fashion-mnist:{root}")
    assert p.returncode == 2 and "truncated idx header" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = cli(*base, "--width-mult", "0.01")
    assert p.returncode == 2 and "--width-mult 0.01 leaves the stem" in p.stderr and "Traceback" not in p.stderr
    p = cli(*base, "--paths", "some")
    assert p.returncode == 2 and "--paths" in p.stderr
    p = cli(*base, "--threads", "0")
    assert p.returncode == 2 and "--threads" in p.stderr
    assert not out.exists()


@pytest.mark.slow
def test_sampled_search_at_half_width_on_fashion_then_train(cli, models, tmp_path):
    from test_search_fashion import write_fashion

    root = write_fashion(tmp_path / "f", n_train=80, n_test=16)
    run = tmp_path / "s"
    p = cli("search", "--space", "fbnet-cifar", "--latency", str(models / "cifar.json"), "--out", str(run),
            *QUICK, "--data", f"fashion-mnist:{root}", "--paths", "sampled", "--width-mult", "0.5", "--threads", "1",
            "--json", env=ONE)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert result["paths"] == "sampled" and result["width_mult"] == 0.5 and result["threads"] == 1
    assert len(result["arch"].split("-")) == 22  # a full-size fbnet-cifar architecture
    p = cli("train", str(run), "--data", f"fashion-mnist:{root}", "--epochs", "1", "--width-mult", "0.5",
            "--threads", "1", "--json", env=ONE)
    assert p.returncode == 0, p.stderr
    trained = json.loads(p.stdout)
    assert trained["width_mult"] == 0.5 and trained["train_images"] == 80 and 0 <= trained["test_acc"] <= 1


def test_search_help_explains(cli):
    p = cli("search", "--help")
    assert p.returncode == 0 and "--target-ms" in p.stdout and "--resume" in p.stdout
    assert "--paths" in p.stdout and "--width-mult" in p.stdout and "fashion-mnist" in p.stdout
    assert "--finalists" in p.stdout and "never the test set" in p.stdout


@pytest.mark.slow
def test_search_train_export_end_to_end(cli, models, tmp_path):
    run = tmp_path / "s1"
    p = cli("search", "--space", "fbnet-cifar", "--latency", str(models / "cifar.json"), "--out", str(run), *QUICK,
            "--json", env=ONE)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    arch = json.loads((run / "arch.json").read_text())
    assert arch["arch"] == result["arch"] and len(arch["arch"].split("-")) == 22
    assert arch["device"] == "synthetic-cpu" and arch["predicted_ms"] >= arch["min_ms"] > 0
    assert (run / "history.json").is_file() and (run / "candidates.json").is_file()
    p = cli("train", str(run / "arch.json"), "--data", "digits", "--epochs", "1", "--limit", "64", "--json", env=ONE)
    assert p.returncode == 0, p.stderr
    trained = json.loads(p.stdout)
    assert 0 <= trained["test_acc"] <= 1 and (run / "model.pt").is_file()
    p = cli("export", str(run), "--format", "onnx", "--json")
    assert p.returncode == 0, p.stderr
    exported = json.loads(p.stdout)
    assert exported["trained"] and exported["bytes"] > 1000
    import onnxruntime as ort
    import numpy as np

    sess = ort.InferenceSession(exported["path"])
    out = sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, 3, 32, 32), np.float32)})[0]
    assert out.shape == (1, 10)
    p = cli("export", str(run), "--format", "pdf")
    assert p.returncode == 2 and "unknown format" in p.stderr
    p = cli("search", "--space", "fbnet-cifar", "--latency", str(models / "cifar.json"), "--out", str(run), *QUICK)
    assert p.returncode == 2 and "--resume" in p.stderr


def test_train_and_export_bad_input(cli, tmp_path):
    p = cli("train", str(tmp_path / "missing.json"))
    assert p.returncode == 2 and "not found" in p.stderr
    bad = tmp_path / "arch.json"
    bad.write_text(json.dumps({"space": "fbnet-cifar", "arch": "k3_e1-skip"}))
    p = cli("export", str(tmp_path), "--format", "onnx")
    assert p.returncode == 2 and "22" in p.stderr and "Traceback" not in p.stderr
