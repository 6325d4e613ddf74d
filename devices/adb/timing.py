"""How long benchmark_model times a block on a phone, and the runner kept alive between blocks.

Why: a fixed `--num_runs=50` with `--min_secs=0` times a 14 µs block for 0.7 ms;
its std in whole µs then cannot show a 1% interval, and the block never
settles.  The phone path now follows the local protocol (`Policy`): at least
`min_seconds` of timed runs (`--min_secs`), at least `min_runs` runs, and, when
the first run's interval is still too wide, a second run with as many runs as
the interval says it needs (capped by `max_seconds`).

Starting benchmark_model once per block costs more than timing most blocks
(our Python runner imports LiteRT each time).  Our runner can stay alive
(`--hwnas_serve`, `hwnas.devices.adbd.serve`); `RunnerLink` starts it in the
run's work directory, sends each block's flags through its FIFO, and stops it
on close.  A stock benchmark_model does not list that flag in `--help`, and
gets one process per block as before.  `?serve=0` turns the link off.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any, Callable

from hwnas.devices.base import Measurement
from hwnas.devices.protocol import Policy

__all__ = ["bench_flags", "runs_needed", "RunnerLink", "SERVE_FLAG"]

SERVE_FLAG = "--hwnas_serve"
_RC_RE = re.compile(r"\nHWNAS_RUNNER_RC=(\d+)\s*$")
#: Exit status of the request command when the serving runner is gone.
_GONE = 97


def bench_flags(graph: str, threads: int, warmup: int, runs: int, min_secs: float,
                max_secs: float | None) -> list[str]:
    """benchmark_model's flags for one timed phase (every value explicit)."""
    flags = [f"--graph={graph}", f"--num_threads={threads}", f"--warmup_runs={warmup}", f"--num_runs={runs}",
             "--warmup_min_secs=0", f"--min_secs={min_secs:g}"]
    if max_secs is not None and math.isfinite(max_secs):
        flags.append(f"--max_secs={max_secs:g}")
    return flags


def runs_needed(m: Measurement, policy: Policy) -> int | None:
    """Runs a second timed phase needs for the policy's precision, or None if the first one suffices/none fits.

    The half-width shrinks as 1/√n, so n·(ci/target)² runs (+50%: the spread of a busy
    device is itself noisy) reach the target;
    capped by what fits in `max_seconds` at the measured mean.
    """
    if m.settled or not m.median_ms or not math.isfinite(m.relative_ci):
        return None
    want = math.ceil(m.n * (m.relative_ci / policy.target_rel_ci) ** 2 * 1.5)
    fits = math.floor(policy.max_seconds * 1000.0 / max(m.mean_ms, 1e-6)) if math.isfinite(policy.max_seconds) \
        else policy.max_runs
    n = min(want, max(fits, 0), max(policy.max_runs, m.n))
    return n if n > m.n else None


class RunnerLink:
    """Our runner, started once per run and kept alive across blocks (FIFO requests over the ADB shell).

    `shell(command, timeout_s, check)` is the phone's shell; `prefix` the argv put before the binary
    (taskset), so the serving process and everything it times is pinned as a one-shot run would be.
    """

    def __init__(self, shell: Callable[..., tuple[int, str]], binary: str, workdir: Callable[[], str],
                 prefix: list[str], enabled: bool = True) -> None:
        self._shell, self.binary, self._workdir, self.prefix = shell, binary, workdir, prefix
        self.state: str = "unknown" if enabled else "off"  # unknown | serving | unsupported | off
        self.dir: str | None = None
        self.pid: str | None = None
        self.restarts = 0
        self.error = ""  # why the serving runner could not start, if it could not

    def supported(self) -> bool:
        """Whether the binary lists the serving flag in `--help` (asked once)."""
        if self.state == "unknown":
            rc, out = self._shell(f"{shlex.quote(self.binary)} --help 2>&1 | head -c 8192", 30, False)
            self.state = "stopped" if SERVE_FLAG in out else "unsupported"
        return self.state in ("stopped", "serving")

    def _start(self) -> bool:
        d = f"{self._workdir()}/runner"
        argv = [*self.prefix, self.binary, f"{SERVE_FLAG}={d}"]
        rc, out = self._shell(" ".join(shlex.quote(a) for a in argv), 60, False)
        m = re.search(r"serving pid=(\d+)", out)
        if rc != 0 or m is None:
            self.error = f"exited {rc}: {' | '.join(out.strip().splitlines()[-2:])[:200]}"
            self.state = "unsupported"
            return False
        self.dir, self.pid, self.state = d, m.group(1), "serving"
        return True

    def request(self, flags: list[str], timeout_s: float) -> tuple[int, str] | None:
        """Run one benchmark through the serving runner: (runner exit status, output), or None to fall back."""
        if not self.supported():
            return None
        for _ in range(2):
            if self.state != "serving" and (self.restarts > 2 or not self._start()):
                return None
            assert self.dir is not None and self.pid is not None
            line = " ".join(shlex.quote(f) for f in flags)
            d = shlex.quote(self.dir)
            cmd = (f"kill -0 {self.pid} 2>/dev/null || exit {_GONE}; "
                   f"printf '%s\\n' {shlex.quote(line)} > {d}/req && cat {d}/resp")
            rc, out = self._shell(cmd, timeout_s, False)
            if rc == _GONE:
                self.state, self.restarts = "stopped", self.restarts + 1
                continue
            status = _RC_RE.search(out)
            if status is None:
                self.state, self.restarts = "stopped", self.restarts + 1
                return None
            return int(status.group(1)), out[: status.start()]
        return None

    def stop(self) -> None:
        """End the serving runner (it also exits on its own once its directory is gone, or when idle)."""
        if self.state == "serving" and self.pid:
            try:
                self._shell(f"kill {self.pid} 2>/dev/null; true", 15, False)
            except Exception:  # noqa: BLE001 - closing over a dead link: the runner's idle exit covers it
                pass
        if self.state == "serving":
            self.state = "stopped"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"runner": self.state, "runner_restarts": self.restarts}
        if self.error:
            out["runner_error"] = self.error
        return out
