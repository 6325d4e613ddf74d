"""A `benchmark_model`-compatible runner on LiteRT, for Linux hosts that have Python.

    python -m hwnas.devices.adbd.runner --graph=model.tflite --num_threads=1 --num_runs=50
    python -m hwnas.devices.adbd.runner --install DIR     # writes DIR/benchmark_model

Same flags and output lines as TFLite's `benchmark_model` (the parts hwnas reads): a
warm-up phase then a timed phase, each summarised as
`count=N first=F curr=C min=m max=M avg=A std=S` in microseconds, then
`Inference timings in us: ...` and a memory-footprint line. Like the real binary it keeps
running until both --num_runs and --min_secs are met, and an unknown flag is only logged
as `Unconsumed cmdline flags` and ignored — so the ADB adapter's parser and its
flag check are exercised by the real format, and a Linux board can be profiled the same way.
"""

from __future__ import annotations

import math
import os
import resource
import shlex
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Flags", "parse_flags", "phase_line", "run", "install", "main"]

@dataclass
class Flags:
    """The flags benchmark_model understands (defaults as in TFLite's tool)."""

    graph: str = ""
    num_threads: int = -1
    warmup_runs: int = 1
    warmup_min_secs: float = 0.5
    num_runs: int = 50
    min_secs: float = 1.0
    max_secs: float = 150.0
    run_delay: float = -1.0
    use_gpu: bool = False
    use_nnapi: bool = False
    use_xnnpack: bool = True
    enable_op_profiling: bool = False
    unconsumed: list[str] = field(default_factory=list)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true"):
        return True
    if text.lower() in ("0", "false"):
        return False
    raise ValueError(text)


_TYPES = {"graph": str, "num_threads": int, "warmup_runs": int, "warmup_min_secs": float, "num_runs": int,
          "min_secs": float, "max_secs": float, "run_delay": float, "use_gpu": _bool, "use_nnapi": _bool,
          "use_xnnpack": _bool, "enable_op_profiling": _bool}


def parse_flags(argv: list[str]) -> Flags:
    """`--name=value` flags; unknown ones are kept in `unconsumed` (the binary only warns)."""
    flags = Flags()
    for arg in argv:
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name in _TYPES and eq:
            try:
                setattr(flags, name, _TYPES[name](value))
                continue
            except ValueError:
                raise SystemExit(f"ERROR: Invalid value for flag --{name}: {value!r}") from None
        flags.unconsumed.append(arg)
    return flags


def phase_line(samples_us: list[float]) -> str:
    """The summary line benchmark_model prints per phase (µs, integers except avg and the percentiles).

    The percentiles (`p10=`, `median=`, `p90=`, as newer benchmark_model builds print `median=`)
    give the adapter a median rather than a mean, which one burst of foreign work would drag.
    """
    n = len(samples_us)
    avg = sum(samples_us) / n
    std = math.sqrt(sum((s - avg) ** 2 for s in samples_us) / n)
    xs = sorted(samples_us)

    def pct(q: float) -> float:
        return xs[min(n - 1, max(0, int(round(q * (n - 1)))))]
    return (f"count={n} first={int(samples_us[0])} curr={int(samples_us[-1])} min={int(min(samples_us))} "
            f"max={int(max(samples_us))} avg={avg:.6g} std={int(round(std))} "
            f"p10={pct(0.1):.6g} median={pct(0.5):.6g} p90={pct(0.9):.6g}")


def _phase(interp, runs: int, min_secs: float, max_secs: float, delay: float) -> list[float]:
    print(f"INFO: Running benchmark for at least {runs} iterations and at least {min_secs:g} seconds "
          f"but terminate if exceeding {max_secs:g} seconds.", flush=True)
    samples: list[float] = []
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if (len(samples) >= runs and elapsed >= min_secs) or (samples and elapsed >= max_secs):
            break
        t0 = time.perf_counter_ns()
        interp.invoke()
        samples.append((time.perf_counter_ns() - t0) / 1000.0)
        if delay > 0:
            time.sleep(delay)
    print(f"INFO: {phase_line(samples)}\n", flush=True)
    return samples


def run(flags: Flags, cache: dict | None = None) -> int:
    """Load the graph with LiteRT and time it; 0 on success, 1 (with `Benchmarking failed.`) otherwise.

    `cache` (the serving loop's) keeps loaded interpreters by (graph, threads, xnnpack), so a
    graph timed again (a second pass, the reference) skips its load.
    """
    print("INFO: STARTING!")
    if flags.unconsumed:
        print(f"WARNING: Unconsumed cmdline flags: {' '.join(flags.unconsumed)}")
    print(f"INFO: Log parameter values verbosely: [0]\nINFO: Num threads: [{flags.num_threads}]\n"
          f"INFO: Graph: [{flags.graph}]\nINFO: #threads used for CPU inference: [{flags.num_threads}]", flush=True)
    if not flags.graph:
        print("ERROR: Please specify the name of your TF Lite input file with --graph\nBenchmarking failed.")
        return 1
    if flags.use_gpu or flags.use_nnapi:
        which = "GPU" if flags.use_gpu else "NNAPI"
        print(f"ERROR: {which} acceleration is unsupported on this platform (LiteRT Python runner).\n"
              "Benchmarking failed.")
        return 1
    if flags.enable_op_profiling:
        print("WARNING: op profiling is not available in the Python runner; timing the whole graph only.")
    import numpy as np
    from ai_edge_litert import interpreter as litert

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    ckey = (flags.graph, flags.num_threads, flags.use_xnnpack)
    try:
        size_mb = os.path.getsize(flags.graph) / 1e6
        interp = cache.get(ckey) if cache is not None else None
        if interp is not None:
            raise _Cached(interp)
        resolver = (litert.OpResolverType.AUTO if flags.use_xnnpack
                    else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interp = litert.Interpreter(model_path=flags.graph, experimental_op_resolver_type=resolver,
                                    num_threads=flags.num_threads if flags.num_threads > 0 else None)
        interp.allocate_tensors()
        rng = np.random.default_rng(0)
        for det in interp.get_input_details():
            dtype = np.dtype(det["dtype"])
            data = (rng.standard_normal(det["shape"]).astype(dtype) if dtype.kind == "f"
                    else rng.integers(0, 2, det["shape"]).astype(dtype))
            interp.set_tensor(det["index"], data)
        if cache is not None:
            while len(cache) >= _CACHE_SIZE:
                cache.pop(next(iter(cache)))
            cache[ckey] = interp
    except _Cached as hit:
        interp = hit.interp
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"ERROR: Failed to load model {flags.graph}: {str(exc).splitlines()[0] if str(exc) else exc}\n"
              "Benchmarking failed.", flush=True)
        return 1
    init_us = (time.perf_counter() - t0) * 1e6
    rss_init = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"INFO: Loaded model {flags.graph}\nINFO: The input model file size (MB): {size_mb:.6g}\n"
          f"INFO: Initialized session in {init_us / 1000:.3f}ms.", flush=True)
    try:
        warm = _phase(interp, max(flags.warmup_runs, 1), flags.warmup_min_secs, flags.max_secs, -1)
        timed = _phase(interp, max(flags.num_runs, 1), flags.min_secs, flags.max_secs, flags.run_delay)
    except (RuntimeError, ValueError) as exc:
        print(f"ERROR: Failed to invoke interpreter: {exc}\nBenchmarking failed.", flush=True)
        return 1
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"INFO: Inference timings in us: Init: {int(init_us)}, First inference: {int(warm[0])}, "
          f"Warmup (avg): {sum(warm) / len(warm):.6g}, Inference (avg): {sum(timed) / len(timed):.6g}")
    print("INFO: Note: as the benchmark tool itself affects memory footprint, the following is only "
          "APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at "
          "your own discretion.")
    print(f"INFO: Memory footprint delta from the start of the tool (MB): init={(rss_init - rss0) / 1024:.4g} "
          f"overall={(rss1 - rss0) / 1024:.4g}", flush=True)
    return 0


class _Cached(Exception):
    """Control flow: the interpreter is already loaded (the serving loop's cache)."""

    def __init__(self, interp: object) -> None:
        super().__init__()
        self.interp = interp


#: Interpreters the serving loop keeps loaded (a profile's reference plus a few recent graphs).
_CACHE_SIZE = 8


def install(directory: str | Path) -> Path:
    """Write DIR/benchmark_model: a wrapper that runs this module with this interpreter."""
    d = Path(directory).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    target = d / "benchmark_model"
    target.write_text(
        "#!/bin/sh\n# benchmark_model-compatible LiteRT runner (hwnas.devices.adbd.runner)\n"
        f"exec {shlex.quote(sys.executable)} -m hwnas.devices.adbd.benchmark_model \"$@\"\n")
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
    return target


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--help"], ["-h"]):
        print(__doc__.strip() + "\n\nFlags: " + " ".join(f"--{k}=" for k in _TYPES) + " --hwnas_serve=DIR")
        return 0
    if argv[:1] == ["--install"] or (argv and argv[0].startswith("--install=")):
        directory = argv[0].partition("=")[2] or (argv[1] if len(argv) > 1 else "")
        if not directory:
            print("error: --install needs a directory", file=sys.stderr)
            return 2
        print(install(directory))
        return 0
    return run(parse_flags(argv))


if __name__ == "__main__":
    sys.exit(main())
