"""Steady loop vs the plain loop, side by side: fresh stores, alternating, N repetitions (issue 17 cost goal).

    .venv/bin/python -m benchmarks.suites.bench_steady_cost [NETWORKS] [REPS]    # defaults 30 3
"""
import sys, time, tempfile, os, statistics, subprocess
from hwnas.api import profile_devices
def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30; reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    res = {"plain": [], "steady": []}
    for r in range(reps):
        for mode in ("plain", "steady"):
            kw = dict(passes=1, reference=False, selfcheck=False) if mode == "plain" else {}
            d = tempfile.mkdtemp()
            t = time.perf_counter()
            s = profile_devices("fbnet-cifar", ["cpu:onnxruntime?threads=1"], os.path.join(d, "s.db"), archs=f"random:{n}", seed=3, **kw)[0]
            w = time.perf_counter() - t
            res[mode].append(w)
            st = s.steady or {}
            load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.split("average:")[-1].strip()
            print(f"rep {r} {mode}: {w:.1f} s, flagged {len(s.flagged)}, requeued {st.get('requeued')}, extra {st.get('extra_pass_items')}, refs {st.get('reference_timings')}, load {load}", flush=True)
    ratios = [b / a for a, b in zip(res["plain"], res["steady"])]
    print("plain", [round(x, 1) for x in res["plain"]], "steady", [round(x, 1) for x in res["steady"]])
    print(f"steady/plain per rep {[round(x, 2) for x in ratios]}, median {statistics.median(ratios):.2f}, ratio of medians {statistics.median(res['steady'])/statistics.median(res['plain']):.2f}")


if __name__ == "__main__":
    main()
