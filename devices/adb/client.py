"""Phones (and Linux boards running devices/adbd) over ADB, timed by TFLite's `benchmark_model`.

    adb://HOST:PORT   (a phone after `adb tcpip 5555`, or devices/adbd)
    adb://SERIAL      (USB; needs adb-shell's `usb` extra, libusb1)
    options: ?cores=4-7&threads=1&warmup=10&binary=/data/local/tmp/benchmark_model&cooldown=0&serve=1
             and the protocol's min_seconds/max_seconds/min_runs (runs=N: exactly N runs, as before)

Speaks ADB straight to the device's adbd with `adb-shell` (no adb server). Every shell
command's exit status is checked with a marker (no shell_v2), every argument is
`shlex.quote`d, pushes go only to a per-run directory under /data/local/tmp/hwnas that
`close()` removes, and one lock serialises the device object (adb-shell is not safe for
concurrent commands on one connection).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from adb_shell import exceptions as adb_exc
from adb_shell.adb_device import AdbDevice
from adb_shell.transport.tcp_transport import TcpTransport

from hwnas.devices.adb.timing import RunnerLink, bench_flags, runs_needed
from hwnas.devices.adb.parse import (SECTION, BenchmarkOutputError, core_mask, info_from_sections,
                               parse_benchmark_output, parse_thermal, split_sections, summary_to_measurement)
from hwnas.devices.base import Artifact, Device, DeviceError, Measurement
from hwnas.devices.protocol import Policy
from hwnas.devices.registry import register_device
from hwnas.devices.uri import DeviceURI

__all__ = ["AdbPhone", "load_signer", "DEFAULT_BINARY", "WORK_ROOT"]

DEFAULT_BINARY = "/data/local/tmp/benchmark_model"
WORK_ROOT = "/data/local/tmp/hwnas"
#: Minutes after which another run's work directory counts as abandoned.
STALE_WORKDIR_MIN = 720
CONNECT_TIMEOUT_S = 10.0
#: Long enough for a user to accept the "Allow USB debugging?" prompt on a phone.
AUTH_TIMEOUT_S = 30.0
#: A shell command that prints nothing for this long is considered hung.
COMMAND_TIMEOUT_S = 60.0
#: benchmark_model prints nothing until it is done; this bounds one block's run.
BENCH_TIMEOUT_S = 600.0
RETRY_BACKOFF_S = (0.2, 0.5, 1.0)
_CONNECTION_ERRORS = (adb_exc.TcpTimeoutException, adb_exc.AdbConnectionError, adb_exc.InvalidResponseError,
                      adb_exc.InvalidCommandError, adb_exc.InvalidChecksumError, adb_exc.UsbReadFailedError,
                      ConnectionError, socket.timeout, OSError)

T = TypeVar("T")


class _NoDelayTcpTransport(TcpTransport):
    """adb-shell's TCP transport with TCP_NODELAY, and EOF raised instead of read as "no data yet".

    Without NODELAY each command stalls ~40 ms on Nagle + delayed ACK (adb-shell writes the
    header and payload separately); without the EOF check a daemon that dies mid-command
    makes adb-shell spin until its read timeout.
    """

    def connect(self, transport_timeout_s: float | None) -> None:
        super().connect(transport_timeout_s)
        self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
        data = super().bulk_read(numbytes, transport_timeout_s)
        if not data:
            raise ConnectionResetError(f"{self._host}:{self._port} closed the connection")
        return data


def load_signer(path: str | Path | None = None):
    """The user's ADB key (the one their phones already trust), generated with mode 0600 if absent."""
    from adb_shell.auth.keygen import keygen
    from adb_shell.auth.sign_cryptography import CryptographySigner

    key = Path(path).expanduser() if path else Path.home() / ".android" / "adbkey"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Create it 0600 first: keygen opens with the process umask and would leave it world-readable.
        os.close(os.open(key, os.O_CREAT | os.O_WRONLY, 0o600))
        keygen(str(key))
        os.chmod(key, 0o600)
    if not Path(str(key) + ".pub").exists():
        from adb_shell.auth.keygen import write_public_keyfile
        write_public_keyfile(str(key), str(key) + ".pub")
    try:
        return CryptographySigner(str(key))
    except (ValueError, TypeError) as exc:
        raise DeviceError(f"cannot load ADB key {key}: {exc}") from None


def _script_info(binary: str) -> str:
    """One shell round trip for everything info() reports; each read tolerates absence."""
    b = shlex.quote(binary)
    return f"""S={shlex.quote(SECTION)}
echo "${{S}}getprop"; getprop 2>/dev/null
echo "${{S}}cpuinfo"; cat /proc/cpuinfo 2>/dev/null
echo "${{S}}os"; cat /etc/os-release 2>/dev/null
echo "${{S}}nproc"; nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo 2>/dev/null
echo "${{S}}cpufreq"; for c in /sys/devices/system/cpu/cpu[0-9]*; do [ -d "$c" ] && echo "${{c##*cpu}} $(cat $c/cpufreq/cpuinfo_min_freq 2>/dev/null || echo -) $(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null || echo -) $(cat $c/cpufreq/scaling_governor 2>/dev/null || echo -)"; done
echo "${{S}}machine_id"; cat /etc/machine-id 2>/dev/null
echo "${{S}}uname"; uname -m 2>/dev/null
echo "${{S}}binary"; if [ -x {b} ]; then (sha256sum {b} || md5sum {b}) 2>/dev/null | head -n 1; else echo missing; fi
{_SCRIPT_THERMAL}"""


_SCRIPT_THERMAL = f"""S={shlex.quote(SECTION)}
echo "${{S}}thermalservice"; dumpsys thermalservice 2>/dev/null | head -n 80
echo "${{S}}battery"; dumpsys battery 2>/dev/null | grep -i temperature
echo "${{S}}zones"; for z in /sys/class/thermal/thermal_zone*; do [ -r "$z/temp" ] && echo "$(cat $z/type 2>/dev/null || echo ${{z##*/}}) $(cat $z/temp 2>/dev/null)"; done
true"""


class AdbPhone(Device):
    """A device reached over ADB; measures .tflite models with benchmark_model under taskset."""

    #: Seconds between thermal polls while waiting for a throttled device to cool.
    poll_s: float = 5.0
    #: Longest wait for cool-down (MLPerf Mobile cools 60–300 s); then measure anyway, flagged.
    max_cooldown_s: float = 300.0
    #: Re-measurements when a block ends throttled.
    max_thermal_retries: int = 2

    def __init__(self, uri: DeviceURI, key_path: str | Path | None = None) -> None:
        super().__init__(uri)
        self.name = f"adb://{uri.target}"
        self.binary = uri.option("binary") or DEFAULT_BINARY
        self._lock = threading.RLock()
        self._key_path = Path(key_path).expanduser() if key_path else Path.home() / ".android" / "adbkey"
        self._signer = load_signer(self._key_path)
        self._dev: AdbDevice | None = None
        self._info: dict[str, Any] | None = None
        self._workdir: str | None = None
        self._pushed: dict[str, str] = {}
        self._binary_ok = False
        #: The local protocol's bounds (min_seconds, min_runs, max_seconds, target CI) apply here too.
        self.policy = Policy.from_uri(uri)
        self.link = RunnerLink(self.shell, self.binary, lambda: self.workdir, self._prefix(),
                               enabled=str(uri.option("serve", 1)).lower() not in ("0", "false", "no"))
        with self._lock:
            self._connect()

    # -- transport -------------------------------------------------------------
    def _connect(self) -> None:
        target = self.uri.target
        host, sep, port = target.rpartition(":")
        try:
            if sep and port.isdigit():
                dev = AdbDevice(_NoDelayTcpTransport(host.strip("[]"), int(port)),
                                default_transport_timeout_s=CONNECT_TIMEOUT_S)
            else:
                from adb_shell.adb_device import AdbDeviceUsb
                dev = AdbDeviceUsb(serial=target, default_transport_timeout_s=CONNECT_TIMEOUT_S)
        except adb_exc.InvalidTransportError:
            raise DeviceError(f"{self.name}: USB needs adb-shell's usb extra (pip install 'adb-shell[usb]', libusb1); "
                              "or run `adb tcpip 5555` and use adb://PHONE_IP:5555") from None
        except (adb_exc.UsbDeviceNotFoundError, OSError) as exc:
            raise DeviceError(f"{self.name}: no such USB device ({exc})") from None
        try:
            dev.connect(rsa_keys=[self._signer], transport_timeout_s=CONNECT_TIMEOUT_S,
                        auth_timeout_s=AUTH_TIMEOUT_S, read_timeout_s=CONNECT_TIMEOUT_S)
        except adb_exc.DeviceAuthError as exc:
            raise DeviceError(f"{self.name}: authentication failed ({exc})") from None
        except (ConnectionResetError, BrokenPipeError, adb_exc.AdbTimeoutError) as exc:
            dev.close()
            raise DeviceError(f"{self.name}: the device refused our key {self._key_path} "
                              f"(accept the prompt on the phone, or add adbkey.pub to the daemon's --keys file): {exc}") from None
        except (socket.timeout, adb_exc.TcpTimeoutException) as exc:
            dev.close()
            raise DeviceError(f"{self.name}: no answer within {CONNECT_TIMEOUT_S:g} s ({exc})") from None
        except OSError as exc:
            dev.close()
            raise DeviceError(f"{self.name}: cannot connect: {exc.strerror or exc}") from None
        self._dev = dev

    def _call(self, what: str, fn: Callable[[AdbDevice], T]) -> T:
        """Run fn on the connection under the device lock; reconnect with backoff on a dropped link."""
        with self._lock:
            last: Exception | None = None
            for attempt, pause in enumerate((0.0, *RETRY_BACKOFF_S)):
                if pause:
                    time.sleep(pause)
                try:
                    if self._dev is None:
                        self._connect()
                    assert self._dev is not None
                    return fn(self._dev)
                except adb_exc.AdbTimeoutError as exc:
                    self._drop()
                    raise DeviceError(f"{self.name}: `{what}` timed out ({exc})") from None
                except DeviceError as exc:
                    last = exc
                    if attempt == 0:
                        raise
                except adb_exc.AdbCommandFailureException as exc:
                    raise DeviceError(f"{self.name}: `{what}` failed: {exc}") from None
                except _CONNECTION_ERRORS as exc:
                    last = exc
                    self._drop()
            raise DeviceError(f"{self.name}: connection lost during `{what}` and could not be re-established: {last}")

    def _drop(self) -> None:
        if self._dev is not None:
            try:
                self._dev.close()
            except Exception:  # noqa: BLE001 - closing a broken transport may raise anything
                pass
            self._dev = None

    def shell(self, command: str, timeout_s: float = COMMAND_TIMEOUT_S, check: bool = True) -> tuple[int, str]:
        """Run a shell command; returns (exit status, output). Non-zero status → DeviceError when check."""
        marker = f"HWNAS_RC_{secrets.token_hex(6)}"
        # A subshell, so that `exit N` inside the command still reaches the marker line.
        wrapped = f"( {command}\n) 2>&1; printf '\\n{marker}=%s\\n' \"$?\""
        out = self._call(_short(command), lambda d: d.shell(wrapped, transport_timeout_s=timeout_s, read_timeout_s=timeout_s,
                                                    timeout_s=timeout_s, decode=False))
        text = out.decode("utf-8", "replace") if isinstance(out, (bytes, bytearray)) else str(out)
        pos = text.rfind(f"\n{marker}=")
        if pos < 0:
            raise DeviceError(f"{self.name}: `{_short(command)}` ended without its exit status (connection dropped?)")
        status = re.match(r"\d+", text[pos + len(marker) + 2:])
        if status is None:
            raise DeviceError(f"{self.name}: `{_short(command)}` printed a malformed exit status")
        rc = int(status.group(0))
        output = text[:pos]
        if check and rc != 0:
            raise DeviceError(f"{self.name}: `{_short(command)}` exited {rc}: {_tail(output)}")
        return rc, output

    def run(self, *args: str, timeout_s: float = COMMAND_TIMEOUT_S, check: bool = True) -> tuple[int, str]:
        """Run argv on the device, each argument shell-quoted."""
        return self.shell(" ".join(shlex.quote(a) for a in args), timeout_s, check)

    @property
    def workdir(self) -> str:
        """This run's directory under /data/local/tmp/hwnas (created on first use)."""
        if self._workdir is None:
            wd = f"{WORK_ROOT}/run-{os.getpid()}-{secrets.token_hex(4)}"
            # Runs that died with their link (phone unplugged, host killed) cannot clean up: sweep
            # their directories once they are STALE_WORKDIR_MIN old, in the same round trip.
            self.shell(f"find {shlex.quote(WORK_ROOT)} -maxdepth 1 -name 'run-*' -mmin +{STALE_WORKDIR_MIN} "
                       f"-exec rm -rf {{}} + 2>/dev/null; mkdir -p {shlex.quote(wd)}")
            self._workdir = wd
        return self._workdir

    def push(self, local: Path, name: str) -> str:
        """Push a file into the work dir (only there); returns its device path."""
        if "/" in name or name in ("", ".", ".."):
            raise DeviceError(f"{self.name}: refusing to push to {name!r} outside the work directory")
        remote = f"{self.workdir}/{name}"
        self._call(f"push {local} {remote}",
                   lambda d: d.push(str(local), remote, transport_timeout_s=BENCH_TIMEOUT_S, read_timeout_s=BENCH_TIMEOUT_S))
        return remote

    # -- Device contract -------------------------------------------------------
    def info(self) -> dict[str, Any]:
        if self._info is None:
            _, out = self.shell(_script_info(self.binary))
            info = info_from_sections(split_sections(out))
            info.update(uri=str(self.uri), runtime=self.uri.runtime, binary=self.binary, transport="adb-shell")
            self._info = info
        return dict(self._info)

    @property
    def threads(self) -> int:
        """Threads passed to benchmark_model: the URI's, else 1 (kernel-level tables are single-threaded)."""
        return self.uri.threads or 1

    @property
    def identity(self) -> str:
        """As Device.identity, but with the thread count actually used rather than 0 for "unset"."""
        info = self.info()
        return "|".join([info["hardware_id"], self.uri.runtime, str(info["runtime_version"]),
                         f"threads={self.threads}", f"cores={self.uri.option('cores') or 'all'}"])

    def thermal(self) -> dict[str, Any] | None:
        _, out = self.shell(_SCRIPT_THERMAL)
        return parse_thermal(split_sections(out))

    def prepare(self, artifact: Artifact) -> str:
        """Export (torch module → .tflite, cached) and push once per content; returns the device path."""
        if artifact.path is not None:
            path = Path(artifact.path)
            if path.suffix.lower() != ".tflite":
                raise DeviceError(f"{self.name}: benchmark_model runs .tflite models; got {path.name}")
        else:
            try:
                from hwnas.devices.export import export_tflite
            except ImportError as exc:
                raise DeviceError(f"{self.name}: exporting a torch module to .tflite needs litert-torch ({exc})") from None
            path = Path(export_tflite(artifact.module, artifact.input_shape, key=artifact.key))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        if digest not in self._pushed:
            self._pushed[digest] = self.push(path, f"{digest}.tflite")
        return self._pushed[digest]

    def _check_binary(self) -> None:
        if not self._binary_ok:
            rc, _ = self.run("test", "-x", self.binary, check=False)
            if rc != 0:
                raise DeviceError(f"{self.name}: benchmark binary {self.binary} not found or not executable on the device "
                                  "(push TFLite's benchmark_model there, pass `benchmark_binary`, or ?binary=PATH; "
                                  "on a Linux host: python -m hwnas.devices.adbd.runner --install DIR)")
            self._binary_ok = True

    def _prefix(self) -> list[str]:
        return ["taskset", core_mask(self.uri.cores)] if self.uri.cores else []

    def bench_args(self, graph: str, runs: int | None = None) -> list[str]:
        """benchmark_model's flags for a first timed phase (or one of `runs` runs).

        `?runs=N` keeps a fixed count (and no minimum time unless `min_seconds` is given);
        otherwise at least `policy.min_runs` runs and `policy.min_seconds` seconds, as locally.
        """
        fixed = self.uri.option("runs")
        if runs is None:
            runs = int(fixed) if fixed else self.policy.min_runs
        min_secs = self.policy.min_seconds if (not fixed or self.uri.option("min_seconds") is not None) else 0.0
        return bench_flags(graph, self.threads, int(self.uri.option("warmup", 10)), runs, min_secs,
                           self.policy.max_seconds if self.uri.option("max_seconds") or not fixed else None)

    def bench_command(self, graph: str, runs: int | None = None) -> str:
        """The exact one-shot command line run on the device, every argument quoted."""
        argv = [*self._prefix(), self.binary, *self.bench_args(graph, runs)]
        return " ".join(shlex.quote(a) for a in argv)

    def _wait_cool(self, reading: dict[str, Any] | None) -> tuple[dict[str, Any] | None, float]:
        waited = 0.0
        while reading and reading.get("throttled") and waited < self.max_cooldown_s:
            time.sleep(self.poll_s)
            waited += self.poll_s
            reading = self.thermal()
        return reading, waited

    def measure(self, module_or_file: Any, input_shape: tuple[int, ...] | None = None,
                key: str | None = None) -> Measurement:
        artifact = Artifact.of(module_or_file, input_shape, key)
        self._check_binary()  # before pushing anything
        graph = self.prepare(artifact)
        command = self.bench_command(graph)
        history = []
        cooldown = float(self.uri.option("cooldown", 0) or 0)  # seconds of rest before each block
        for attempt in range(self.max_thermal_retries + 1):
            if cooldown:
                time.sleep(cooldown)
            before, waited = self._wait_cool(self.thermal())
            m = self._bench_adaptive(graph)
            after = self.thermal()
            m.thermal_before, m.thermal_after = before, after
            history.append({"before": before, "after": after, "waited_s": waited})
            if not (after and after.get("throttled")):
                break
        m.extra.update(command=command, thermal_history=history, thermal_retries=len(history) - 1,
                       throttled=bool(after and after.get("throttled")), threads=self.threads,
                       cores=self.uri.option("cores"), **self.link.describe())
        if m.extra["throttled"]:
            m.settled = False
        return m

    def _bench_adaptive(self, graph: str) -> Measurement:
        """One timed phase, and a longer second one when the first's interval is too wide (not with ?runs=N)."""
        m = self._bench_once(graph)
        more = None if self.uri.option("runs") else runs_needed(m, self.policy)
        if more is not None:
            first_n = m.n
            m = self._bench_once(graph, more)
            m.extra["first_phase_runs"] = first_n
        return m

    def _bench_once(self, graph: str, runs: int | None = None) -> Measurement:
        command = self.bench_command(graph, runs)
        answer = self.link.request(self.bench_args(graph, runs), BENCH_TIMEOUT_S)
        rc, out = answer if answer is not None else self.shell(command, timeout_s=BENCH_TIMEOUT_S, check=False)
        try:
            parsed = parse_benchmark_output(out)
        except BenchmarkOutputError as exc:
            why = f"exited {rc}: {_tail(out)}" if rc else str(exc)
            raise DeviceError(f"{self.name}: `{_short(command)}` {why}") from None
        if parsed["unconsumed"]:
            raise DeviceError(f"{self.name}: `{_short(command)}`: the binary ignored flags it does not know "
                              f"(Unconsumed cmdline flags: {parsed['unconsumed']}); its timings would not be what was asked")
        if rc != 0 or parsed["failed"]:
            raise DeviceError(f"{self.name}: `{_short(command)}` exited {rc}: {_tail(out)}")
        return summary_to_measurement(parsed, self.policy.target_rel_ci)

    def close(self) -> None:
        """Remove this run's work directory and drop the connection."""
        with self._lock:
            self.link.stop()
            if self._workdir is not None:
                try:  # reconnects if the link dropped, so a blip does not leave files on the phone
                    self.run("rm", "-rf", "--", self._workdir, timeout_s=15)
                except DeviceError:
                    pass
            self._workdir = None
            self._pushed.clear()
            self._drop()


def _short(command: str, limit: int = 160) -> str:
    first = command.strip().splitlines()[0] if command.strip() else command
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _tail(output: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in output.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[:400] or "no output"


@register_device("adb")
def _open(uri: DeviceURI) -> AdbPhone:
    return AdbPhone(uri)
