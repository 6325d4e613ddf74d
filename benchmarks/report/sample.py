"""Synthetic report inputs shaped exactly like the store's DataFrames (contract 2): for tests and the benchmark.

Latencies follow a simple cost formula per block with a device-specific
bias per kernel size, so two devices genuinely disagree about which blocks
are cheap — what the ratio heatmap must show.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pandas as pd

from hwnas.report.render import ReportData, RunSummary
from hwnas.search.space import BlockSpec, get_space

_DEVICE_COLS = ["device", "device_uri", "runtime", "runtime_version", "threads", "cores"]


def _cost(spec: BlockSpec, k5_bias: float, speed: float) -> float:
    hidden = spec.hidden if spec.op == "ir" else spec.cin
    work = spec.resolution ** 2 * (spec.cin * hidden + hidden * spec.kernel ** 2 + hidden * spec.cout) / spec.groups
    bias = k5_bias if spec.kernel == 5 else 1.0
    return 0.01 + speed * bias * work / 2e6


def block_frame(device: str, uri: str, k5_bias: float, speed: float, space: str = "fbnet-cifar",
                seed: int = 0, key_suffix: str = "") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for spec in get_space(space).unique_blocks():
        med = _cost(spec, k5_bias, speed)
        noise = abs(rng.normal(0.01, 0.005))
        rows.append({
            "device": device, "device_uri": uri, "runtime": "onnxruntime", "runtime_version": "1.20.0",
            "threads": 1, "cores": "", "block_key": spec.key + key_suffix, "block_json": spec.to_json(),
            "op": spec.op, "family": spec.family, "cin": spec.cin, "cout": spec.cout, "resolution": spec.resolution,
            "kernel": spec.kernel, "expansion": spec.expansion, "groups": spec.groups, "stride": spec.stride,
            "act": spec.act, "se": spec.se, "n": 50, "median_ms": med, "mean_ms": med * 1.01, "std_ms": med * noise,
            "p10_ms": med * (1 - noise), "p90_ms": med * (1 + 2 * noise), "min_ms": med * 0.97,
            "ci_halfwidth_ms": med * noise / 5, "settled": True, "flagged": False,
            "thermal_before": None, "thermal_after": json.dumps({"temps_c": {"cpu": 50}, "throttled": False}),
            "timestamp": "2026-11-23T09:00:00Z", "tool_version": "0.1.0",
        })
    return pd.DataFrame(rows)


def network_frame(device: str, uri: str, blocks: pd.DataFrame, n: int = 12, seed: int = 1) -> pd.DataFrame:
    space = get_space("fbnet-cifar")
    rng = np.random.default_rng(seed)
    by_key = blocks.set_index("block_key")["median_ms"]
    rows = []
    for _ in range(n):
        ops = [str(rng.choice(space.candidates)) for _ in range(space.num_layers)]
        total = sum(by_key.get(s.key, 0.0) for s in space.blocks(ops)) + 0.05
        rows.append({"device": device, "device_uri": uri, "runtime": "onnxruntime", "runtime_version": "1.20.0",
                     "threads": 1, "cores": "", "space": "fbnet-cifar", "arch": "-".join(ops), "n": 30,
                     "median_ms": total, "mean_ms": total, "std_ms": 0.01, "p10_ms": total * 0.99,
                     "p90_ms": total * 1.02, "min_ms": total * 0.98, "ci_halfwidth_ms": total * 0.002,
                     "settled": True, "flagged": False})
    return pd.DataFrame(rows)


def sample_data(names: Sequence[str] = ("cpu-a", "cpu-b"), with_model: bool = True,
                with_runs: bool = True) -> ReportData:
    """Devices that disagree about k5 blocks, a model for the first, and one search run on each of the first two."""
    frames = [block_frame(n, f"{n}:onnxruntime?threads=1", k5_bias=1.0 + 0.8 * i, speed=1.0 / (1 + i), seed=i)
              for i, n in enumerate(names)]
    a = names[0]
    na = network_frame(a, f"{a}:onnxruntime?threads=1", frames[0])
    devices = pd.DataFrame([
        {"device": n, "device_uri": f"{n}:onnxruntime?threads=1",
         "info": {"cpu": f"Test CPU {chr(65 + i)}", "cores": 2 + 6 * i, "runtime": "onnxruntime",
                  "runtime_version": "1.20.0", "hardware_id": f"hw-{i}"},
         "n_blocks": len(frames[i]), "n_networks": len(na) if i == 0 else 0}
        for i, n in enumerate(names)])
    preds = pd.DataFrame()
    if with_model:
        rng = np.random.default_rng(3)
        preds = pd.DataFrame({"model": "a.latency.json", "device": a, "level": "network", "key": na["arch"],
                              "measured_ms": na["median_ms"],
                              "predicted_ms": na["median_ms"] * (1 + rng.normal(0, 0.05, len(na)))})
    runs = []
    if with_runs:
        space = get_space("fbnet-cifar")
        for i, dev in enumerate(names[:2]):
            ops = [space.candidates[(j + 3 * i) % 4 * 2 + (i % 2)] for j in range(space.num_layers)]
            history = [{"epoch": e, "val_accuracy": 0.5 + 0.1 * e, "expected_latency_ms": 3.0 - 0.2 * e}
                       for e in range(4)]
            cands = [{"arch": "-".join(ops), "predicted_ms": 2.0 + 0.3 * c, "accuracy": 0.8 + 0.02 * c}
                     for c in range(4)]
            runs.append(RunSummary(name=f"s{i + 1}", space="fbnet-cifar", device=dev, arch="-".join(ops),
                                   predicted_ms=2.5 + i, target_ms=2.0, accuracy=0.9 - 0.05 * i,
                                   accuracy_source="train", ops=ops, history=history, candidates=cands))
    return ReportData(devices=devices, blocks=pd.concat(frames, ignore_index=True), networks=na,
                      predictions=preds, runs=runs, space=get_space("fbnet-cifar"), tool_version="0.1.0",
                      sources={"store": "hwnas.db"})
