"""The issue's repros that are not property tests: each ends in one line and exit 2, or in correct work."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner

from hwnas.devices.adbd import AdbDaemon, load_authorized_keys
from hwnas.devices.adbd.limits import is_loopback
from hwnas.noise import quiet_third_party
from hwnas.profiler.store import Store
from hwnas.search.space import InputError, get_space
from cli_invariant import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def keypair(tmp_path_factory):
    d = tmp_path_factory.mktemp("clikeys")
    keygen(str(d / "adbkey"))
    return d / "adbkey"


def _one_line_exit_2(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("args", [["--port", "70000"], ["--port", "-5"], ["--keys", "BINARY"]])
def test_daemon_flags_end_in_one_line(args, tmp_path):
    binary = tmp_path / "keys.bin"
    binary.write_bytes(os.urandom(512))
    args = [str(binary) if a == "BINARY" else a for a in args]
    if "--keys" not in args:
        keygen(str(tmp_path / "k"))
        args += ["--keys", str(tmp_path / "k.pub")]
    proc = subprocess.run([sys.executable, "-m", "hwnas.devices.adbd", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    _one_line_exit_2(proc)


def test_binding_beyond_loopback_warns(keypair):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    proc = subprocess.Popen([sys.executable, "-m", "hwnas.devices.adbd", "--host", "0.0.0.0", "--port", "0",
                             "--keys", str(keypair) + ".pub"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("adbd listening on 0.0.0.0:")
        assert proc.stderr.readline().startswith("warning: listening on 0.0.0.0, not loopback")
    finally:
        proc.kill()
        proc.wait()


def test_relative_sync_paths_agree_with_the_shell_cwd(keypair, tmp_path):
    with AdbDaemon(keys=load_authorized_keys(str(keypair) + ".pub")) as d:
        dev = AdbDeviceTcp("127.0.0.1", d.port, default_transport_timeout_s=5)
        dev.connect(rsa_keys=[CryptographySigner(str(keypair))], auth_timeout_s=3, read_timeout_s=5)
        rel = os.path.relpath(tmp_path / "pushed.txt", "/")  # relative to the shell's cwd (/)
        dev.push(io.BytesIO(b"same place"), rel)
        assert (tmp_path / "pushed.txt").read_bytes() == b"same place"
        assert dev.shell(f"cat '{rel}'") == "same place"
        assert dev.stat(rel)[1] == len(b"same place")
        dev.close()


def test_export_refuses_a_missing_directory(tmp_path):
    code, _, err = run(["export", "missing-run", "--out", "no/such/dir/model.onnx"], tmp_path)
    assert code == 2 and "does not exist" in err and not (tmp_path / "no").exists()


def test_keygen_refuses_a_directory_and_warns_about_a_readable_key(tmp_path):
    code, _, err = run(["adb", "keygen", "--path", str(tmp_path)], tmp_path)
    assert code == 2 and "is a directory" in err
    key = tmp_path / "adbkey"
    code, _, _ = run(["adb", "keygen", "--path", str(key)], tmp_path)
    assert code == 0 and key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    code, _, err = run(["adb", "keygen", "--path", str(key)], tmp_path)
    assert code == 0 and "readable by others" in err
    if os.geteuid() != 0:  # root reads anything
        key.chmod(0o000)
        code, _, err = run(["adb", "keygen", "--path", str(key)], tmp_path)
        assert code == 2 and "permission denied" in err


def test_report_works_on_an_imported_lut_only_store_and_on_never_settled_blocks(tmp_path):
    (tmp_path / "t.csv").write_text("op,cin,cout,resolution,stride,kernel,expansion,median_ms\n"
                                    "ir,16,16,32,1,3,3,0.5\nconv,3,16,32,1,3,1,0.2\n")
    assert run(["lut", "import", "t.csv", "--store", "imp.db", "--device", "phone"], tmp_path)[0] == 0
    code, _, err = run(["report", "--store", "imp.db", "--out", "imp.html"], tmp_path)
    assert code == 0 and (tmp_path / "imp.html").stat().st_size > 1000, err
    with Store(tmp_path / "u.db") as store:
        store.add_device("dev", "cpu", {"cpu": "x"})
        for spec in get_space("fbnet-cifar").unique_blocks():
            store.put_block("dev", spec, {"n": 5, "median_ms": 0.3, "mean_ms": 0.3, "settled": False}, flagged=True)
    code, _, err = run(["report", "--store", "u.db", "--out", "u.html"], tmp_path)
    assert code == 0, err


def test_lut_import_leaves_no_half_written_store(tmp_path):
    (tmp_path / "t.yaml").write_text(
        "Conv-input:32x32x3-output:32x32x16: {count: 10, mean: 0.2, std: 0.01}\n"
        "expanded_conv-input:0x0x0-output:0x0x0-expand:3-kernel:3-stride:1: {count: 3, mean: 0.5}\n")
    code, _, err = run(["lut", "import", "t.yaml", "--store", "s.db", "--device", "d"], tmp_path)
    assert code == 2 and not (tmp_path / "s.db").exists(), err


def test_model_of_huge_numbers_is_refused_and_json_output_is_strict(tmp_path):
    from hwnas.latency_models.io import model_from_json

    with pytest.raises(InputError, match="not a usable"):
        model_from_json({"format": "hwnas-latency-model", "format_version": 1, "units": "ms",
                         "model": {"scale": 1e308}})
    with pytest.raises(InputError, match="format_version"):
        model_from_json({"format": "hwnas-latency-model", "format_version": True, "units": "ms", "model": {}})
    from hwnas.output import print_json

    buf = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(buf):
        print_json({"a": float("inf"), "b": [float("nan")]})
    assert json.loads(buf.getvalue()) == {"a": None, "b": [None]}


def test_third_party_noise_is_silenced_unless_verbose():
    assert quiet_third_party(env={"HWNAS_VERBOSE": "1"}) is False
    assert quiet_third_party(env={}) is True
    assert logging.getLogger("torchao").getEffectiveLevel() >= logging.ERROR
    assert logging.getLogger("torch.utils._pytree").getEffectiveLevel() >= logging.ERROR
    with warnings.catch_warnings(record=True) as caught:
        quiet_third_party(env={})  # catch_warnings reset the filters: install them again inside
        warnings.warn("torch.utils._pytree._register_pytree_node is deprecated", FutureWarning)
    assert not caught


def test_limit_applies_before_sampling(tmp_path, monkeypatch):
    import hwnas.profiler.enumerate as enumerate_mod

    asked: list[int] = []
    real = enumerate_mod.sample_blocks
    monkeypatch.setattr(enumerate_mod, "sample_blocks", lambda space, n, seed: asked.append(n) or real(space, n, seed))
    code, _, _ = run(["profile", "--space", "fbnet-cifar", "--device", "cpu", "--no-blocks", "--samples", "9000000",
                      "--limit", "1", "--store", "no/s.db"], tmp_path)
    assert code == 2 and asked == [1]  # one sample built, not nine million; then the missing directory
