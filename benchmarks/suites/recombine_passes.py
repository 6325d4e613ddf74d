"""Redo bench_noise's estimates from its stores' pass history with other combine rules (median, low pair, fastest).

    .venv/bin/python -m benchmarks.suites.recombine_passes /tmp/bench_noise-XXXX MODE
"""
import sys, numpy as np, pandas as pd, statistics
from pathlib import Path
from hwnas.profiler.store import Store
from hwnas.profiler import history
from hwnas.latency_models.network import fit_latency_model
from hwnas.latency_models.metrics import within
from hwnas.search.space import get_space

def rule_median(v): return statistics.median(v)
def rule_low(v, agree=0.05):
    v = sorted(v); lo = v[0]
    # the fastest pass that another pass confirms (load only slows); else the median
    for i in range(len(v) - 1):
        if v[i + 1] / v[i] - 1 <= agree:
            return (v[i] + v[i + 1]) / 2
    return statistics.median(v)
def rule_min(v): return min(v)
RULES = {"median": rule_median, "low-pair": rule_low, "min": rule_min}

def tables(db, rule):
    with Store(db) as st:
        p = history.passes(st)
        ident = p.device.iloc[0]
        blocks, nets = st.blocks(ident), st.networks(ident)
    acc = p[p.verdict.isin(["accepted", "scaled", "unchecked"])]
    est = acc.groupby("item_key").median_ms.apply(lambda s: rule(list(s)))
    blocks = blocks.copy(); nets = nets.copy()
    blocks["median_ms"] = blocks.block_key.map(est).fillna(blocks.median_ms)
    nets["median_ms"] = ("fbnet-cifar:" + nets.arch).map(est).fillna(nets.median_ms)
    return ident, blocks, nets

def main() -> None:
    D = Path(sys.argv[1]); mode = sys.argv[2]
    grid = {s.key for s in get_space("fbnet-cifar").unique_blocks()}
    for name, rule in RULES.items():
        qi, qb, qn = tables(D / f"{mode}-quiet.db", rule)
        li, lb, ln = tables(D / f"{mode}-loaded.db", rule)
        out = []
        for b, n, ident in ((qb, qn, qi), (lb, ln, li)):
            m = fit_latency_model(b[b.block_key.isin(grid)], n, "fbnet-cifar", ident)
            pred = m.predict_networks(get_space("fbnet-cifar"), list(qn.arch))
            out.append(within(pred, qn.median_ms.to_numpy(float), 10))
        x = qb.set_index("block_key").median_ms; y = lb.set_index("block_key").median_ms
        both = x.index.intersection(y.index)
        agree = float(np.mean(np.abs(x[both] / y[both] - 1) <= 0.05))
        nx = qn.set_index("arch").median_ms; ny = ln.set_index("arch").median_ms
        bn = nx.index.intersection(ny.index)
        nagree = float(np.mean(np.abs(nx[bn] / ny[bn] - 1) <= 0.10))
        print(f"{mode:12s} {name:9s} nets±10% quiet {out[0]:.0%} loaded {out[1]:.0%}; blocks q~l ±5% {agree:.0%}; nets q~l ±10% {nagree:.0%}")


if __name__ == "__main__":
    main()
