"""The measurement store: one SQLite file that every later part reads.

Why SQLite (stdlib `sqlite3`) and not files per device: one writer and
many readers share it safely (WAL), each measurement is its own
transaction so a SIGKILL loses at most the block in flight, and pandas
reads it straight into the DataFrames the latency models fit on.

Layout (schema version `SCHEMA_VERSION`, kept in `meta`):

- ``devices``  one row per device identity (hardware + runtime + version +
  threads + affinity): its URI and `info()` JSON.
- ``blocks``   one row per (device, block key): the spec JSON and all timing
  statistics, thermal state before/after, timestamp, tool version.
- ``networks`` one row per (device, space, arch text): whole-network timings.
"""

from __future__ import annotations

import functools
import json
import math
import os
import socket
import sqlite3
import threading
import time
import urllib.parse
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pandas as pd

from hwnas.devices.uri import canonical_uri
from hwnas.search.space import BlockSpec, InputError

if TYPE_CHECKING:
    from hwnas.devices.base import Measurement

__all__ = ["Store", "StoreError", "SCHEMA_VERSION", "TIMING_COLUMNS", "tool_version", "owner_id", "stats_of"]

SCHEMA_VERSION = 1

#: Timing statistics every measurement row carries (milliseconds, plus counts and flags).
TIMING_COLUMNS = ("n", "median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms", "min_ms", "ci_halfwidth_ms",
                  "settled", "flagged", "thermal_before", "thermal_after", "timestamp", "tool_version")
_DEVICE_COLUMNS = ("device", "device_uri", "runtime", "runtime_version", "threads", "cores")
_SPEC_COLUMNS = ("op", "family", "cin", "cout", "resolution", "kernel", "expansion", "groups", "stride", "act", "se")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, device_uri TEXT NOT NULL, runtime TEXT, runtime_version TEXT,
    threads INTEGER, cores TEXT, info TEXT NOT NULL, first_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    device TEXT NOT NULL REFERENCES devices(device), block_key TEXT NOT NULL, block_json TEXT NOT NULL,
    {", ".join(f"{c} {'TEXT' if c.startswith('thermal') or c == 'tool_version' else 'REAL'}" for c in TIMING_COLUMNS)},
    PRIMARY KEY (device, block_key));
CREATE TABLE IF NOT EXISTS networks (
    device TEXT NOT NULL REFERENCES devices(device), space TEXT NOT NULL, arch TEXT NOT NULL,
    {", ".join(f"{c} {'TEXT' if c.startswith('thermal') or c == 'tool_version' else 'REAL'}" for c in TIMING_COLUMNS)},
    PRIMARY KEY (device, space, arch));
"""


#: Crash safety and sharing (issue 15), kept apart from the measurement tables:
#: ``pending``  items whose measurement did not settle: the best try is already in
#:              blocks/networks (settled=0), and the next round or run measures them again;
#: ``leases``   an item claimed by one process (owner = host:pid) until it expires;
#: ``hw_locks`` the hardware a process is loading right now (one measurement at a time).
_SHARING_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (device TEXT NOT NULL, item_key TEXT NOT NULL, attempts INTEGER NOT NULL,
    since REAL NOT NULL, PRIMARY KEY (device, item_key));
CREATE TABLE IF NOT EXISTS leases (device TEXT NOT NULL, item_key TEXT NOT NULL, owner TEXT NOT NULL,
    expires REAL NOT NULL, PRIMARY KEY (device, item_key));
CREATE TABLE IF NOT EXISTS hw_locks (hardware TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
"""


def owner_id() -> str:
    """This process as a lease owner: host and pid, so a dead owner on this host is seen at once."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str) -> bool:
    """False only when the owner is a process of this host that no longer exists (a kill -9)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's process: only its lease's expiry tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Statements one by one inside the caller's transaction (executescript would commit it first)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


class StoreError(InputError):
    """A store file that cannot be used: corrupt, not SQLite, or written by a newer hwnas."""


@functools.lru_cache(maxsize=1)
def tool_version() -> str:
    """hwnas's version, recorded with every row (cached: the metadata lookup costs ~1 ms)."""
    try:
        return metadata.version("hwnas")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _num(value: Any) -> float | None:
    """NaN/None → NULL (SQLite has no NaN), numbers → float."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def timing_row(stats: Mapping[str, Any], flagged: bool = False, timestamp: float | None = None) -> dict[str, Any]:
    """The timing columns of one measurement (a `Measurement.to_dict()` or an imported row)."""
    return {
        "n": _num(stats.get("n")),
        "median_ms": _num(stats.get("median_ms")),
        "mean_ms": _num(stats.get("mean_ms")),
        "std_ms": _num(stats.get("std_ms")),
        "p10_ms": _num(stats.get("p10_ms")),
        "p90_ms": _num(stats.get("p90_ms")),
        "min_ms": _num(stats.get("min_ms")),
        "ci_halfwidth_ms": _num(stats.get("ci_halfwidth_ms")),
        "settled": int(bool(stats.get("settled", True))),
        "flagged": int(bool(flagged)),
        "thermal_before": _json_or_none(stats.get("thermal_before")),
        "thermal_after": _json_or_none(stats.get("thermal_after")),
        "timestamp": time.time() if timestamp is None else timestamp,
        "tool_version": stats.get("tool_version") or tool_version(),
    }


class Store:
    """The SQLite measurement store (WAL mode, one transaction per measurement).

    Thread-safe: every worker thread writes through this one connection under
    a lock, which is how several devices' results are serialized into one file.
    """

    def __init__(self, path: str | Path, create: bool = True, readonly: bool = False) -> None:
        """Open (or create) a store; `readonly` for commands that only read (fit, report, export).

        A read-only store never gets a schema written into it, and opening one
        whose file is read-only works.  Every open runs SQLite's quick_check,
        so a damaged file is refused before anything is read from or written to it.
        """
        self.path = Path(path)
        self.readonly = readonly
        if (not create or readonly) and not self.path.is_file():
            if self.path.exists():
                raise StoreError(f"store path is not a file: {self.path}")
            raise StoreError(f"store not found: {self.path}")
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"store path is not a file: {self.path}")
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(f"store directory does not exist: {self.path.parent}")
        if readonly and self.path.stat().st_size == 0:
            raise StoreError(f"store {self.path} is empty (0 bytes): not an hwnas store")
        self._lock = threading.RLock()
        try:
            self._db = self._connect_readonly() if readonly else self._connect()
            self._check_integrity()
            if readonly:
                self._check_schema_readonly()
            else:
                self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {self.path} is not a usable hwnas store ({exc}); "
                             f"move it aside or pick another --store") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _connect_readonly(self) -> sqlite3.Connection:
        """Open without writing anything, not even SQLite's -wal/-shm side files.

        With no -wal file beside the store no writer is active and nothing awaits a
        checkpoint, so `immutable=1` reads it with no side files; with one (a profile
        is running), mode=ro shares the writer's WAL and sees its latest rows.  Where
        SQLite cannot make its WAL index (a read-only directory), immutable=1 too.
        """
        quoted = urllib.parse.quote(str(self.path.resolve()))
        if not Path(f"{self.path}-wal").exists():
            return sqlite3.connect(f"file:{quoted}?immutable=1", uri=True, check_same_thread=False)
        try:
            db = sqlite3.connect(f"file:{quoted}?mode=ro", uri=True, check_same_thread=False, timeout=30)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            return sqlite3.connect(f"file:{quoted}?immutable=1", uri=True, check_same_thread=False)

    def _check_integrity(self) -> None:
        """PRAGMA quick_check: a file with damaged pages is refused, not written into or half-read."""
        with self._lock:
            rows = [r[0] for r in self._db.execute("PRAGMA quick_check(5)")]
        if rows != ["ok"]:
            detail = "; ".join(str(r) for r in rows[:2])
            raise StoreError(f"store {self.path} is damaged (SQLite quick_check: {detail}); "
                             f"restore a backup or move it aside")

    def _check_schema_readonly(self) -> None:
        """What `_init_schema` checks, without writing: an empty or foreign file is refused."""
        with self._lock:
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                raise StoreError(f"store {self.path} holds no tables: not an hwnas store")
            if not {"meta", "devices", "blocks", "networks"} <= tables:
                raise StoreError(f"store {self.path} is an SQLite file of another program (tables: "
                                 f"{', '.join(sorted(tables))})")
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            version = int(row[0]) if row else 0
        except ValueError:
            version = 0
        if version < 1:
            raise StoreError(f"store {self.path} has no schema version; it was not written by hwnas")
        if version > SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema version {version}, newer than this hwnas knows "
                             f"({SCHEMA_VERSION}); upgrade hwnas to read it")

    # -- lifecycle -------------------------------------------------------------------
    def _init_schema(self) -> None:
        with self._lock, self._db:
            # One write transaction from the check to the version row: two processes creating one
            # store at once must not see each other's half-made schema ("no schema version").
            self._db.execute("BEGIN IMMEDIATE")
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "meta" in tables:
                row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                try:
                    version = int(row[0]) if row else 0
                except ValueError:
                    version = 0
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"store {self.path} has schema version {version}, newer than this hwnas knows "
                        f"({SCHEMA_VERSION}); upgrade hwnas to read it")
                if version < 1:
                    raise StoreError(f"store {self.path} has no schema version; it was not written by hwnas")
            elif tables:
                raise StoreError(f"store {self.path} is an SQLite file of another program (tables: "
                                 f"{', '.join(sorted(tables))})")
            _run_script(self._db, _SCHEMA)
            _run_script(self._db, _SHARING_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('created_by', ?)", (tool_version(),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def integrity_check(self) -> str:
        """SQLite's own `PRAGMA integrity_check` ("ok" when the file is sound)."""
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # -- writing ---------------------------------------------------------------------
    def add_device(self, identity: str, uri: str, info: Mapping[str, Any], runtime: str | None = None,
                   threads: int | None = None, cores: str | None = None) -> None:
        """Record a device (first URI and info kept; a later run with the same identity adds nothing).

        `threads` 0/None means the runtime's default; `cores` is the affinity list text or "all".
        """
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (identity, uri, runtime or info.get("runtime"), str(info.get("runtime_version", "") or ""),
                 int(threads or 0), cores or "all", json.dumps(dict(info), sort_keys=True, default=str),
                 time.time()))

    def put_block(self, device: str, spec: BlockSpec, stats: Mapping[str, Any], flagged: bool = False) -> None:
        """Store one block measurement (replacing an older one of the same key: `--remeasure`)."""
        row = timing_row(stats, flagged)
        cols = ["device", "block_key", "block_json", *row]
        with self._lock, self._db:
            self._db.execute(f"INSERT OR REPLACE INTO blocks ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                             (device, spec.key, spec.to_json(), *row.values()))

    def put_network(self, device: str, space: str, arch: str, stats: Mapping[str, Any], flagged: bool = False) -> None:
        row = timing_row(stats, flagged)
        cols = ["device", "space", "arch", *row]
        with self._lock, self._db:
            self._db.execute(f"INSERT OR REPLACE INTO networks ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                             (device, space, arch, *row.values()))

    # -- reading ---------------------------------------------------------------------
    def measured_blocks(self, device: str) -> set[str]:
        """Block keys already measured on a device identity: what a resumed run skips."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT block_key FROM blocks WHERE device=?", (device,))}

    def measured_networks(self, device: str, space: str) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT arch FROM networks WHERE device=? AND space=?",
                                                   (device, space))}

    def _device_rows(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._db.execute("SELECT device, device_uri FROM devices ORDER BY first_seen"))

    def resolve_device(self, uri_or_identity: str) -> str:
        """The stored identity a URI or identity names; InputError naming the known ones if none."""
        rows = self._device_rows()
        text = (uri_or_identity or "").strip()
        for identity, _ in rows:
            if identity == text:
                return identity
        candidates = {text}
        try:  # a URI the user typed, normalized as the profiler stored it
            candidates.add(canonical_uri(text))
        except InputError:
            pass
        hits = [identity for identity, uri in rows if uri in candidates or _canonical_or_self(uri) in candidates]
        if len(hits) == 1:
            return hits[0]
        known = ", ".join(f"{u} ({i})" for i, u in rows) or "none (profile a device first)"
        if hits:
            raise InputError(f"device {text!r} matches several stored devices: {', '.join(hits)}; "
                             f"pass one identity")
        raise InputError(f"no device {text!r} in store {self.path}; known: {known}")

    def _timing_frame(self, table: str, device: str | None, extra: str) -> pd.DataFrame:
        where, args = "", ()
        if device is not None:
            where, args = "WHERE t.device = ?", (self.resolve_device(device),)
        query = (f"SELECT d.device, d.device_uri, d.runtime, d.runtime_version, d.threads, d.cores, {extra}, "
                 f"{', '.join('t.' + c for c in TIMING_COLUMNS)} "
                 f"FROM {table} t JOIN devices d ON d.device = t.device {where} ORDER BY t.rowid")
        with self._lock:
            df = pd.read_sql_query(query, self._db, params=args)
        for col in ("thermal_before", "thermal_after"):
            df[col] = [json.loads(v) if isinstance(v, str) else None for v in df[col]]
        df["n"] = df["n"].astype("Int64")
        for col in ("settled", "flagged"):
            df[col] = df[col].astype(bool)
        return df

    def blocks(self, device: str | None = None) -> pd.DataFrame:
        """Every block measurement (of one device, or all), one row each, spec fields as columns."""
        df = self._timing_frame("blocks", device, "t.block_key, t.block_json")
        specs = [BlockSpec.from_json(j) for j in df["block_json"]]
        for col in _SPEC_COLUMNS:
            df[col] = [getattr(s, col) for s in specs]
        return df[[*_DEVICE_COLUMNS, "block_key", "block_json", *_SPEC_COLUMNS, *TIMING_COLUMNS]]

    def networks(self, device: str | None = None) -> pd.DataFrame:
        """Whole-network measurements: device columns, `space`, `arch` (canonical text) and timings."""
        df = self._timing_frame("networks", device, "t.space, t.arch")
        return df[[*_DEVICE_COLUMNS, "space", "arch", *TIMING_COLUMNS]]

    def devices(self) -> pd.DataFrame:
        """Stored devices with their info and how many blocks and networks each has."""
        with self._lock:
            df = pd.read_sql_query(
                "SELECT d.device, d.device_uri, d.info, "
                "(SELECT COUNT(*) FROM blocks b WHERE b.device = d.device) AS n_blocks, "
                "(SELECT COUNT(*) FROM networks n WHERE n.device = d.device) AS n_networks "
                "FROM devices d ORDER BY d.first_seen", self._db)
        df["info"] = [json.loads(v) for v in df["info"]]
        return df

    def device_info(self, identity: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT info FROM devices WHERE device=?", (identity,)).fetchone()
        return json.loads(row[0]) if row else {}


def _canonical_or_self(uri: str) -> str:
    """A stored URI's canonical form; one that no longer parses (an imported LUT's name) stays itself."""
    try:
        return canonical_uri(uri)
    except InputError:
        return uri


#: The statistics of a measurement that the store keeps (its raw samples stay out).
_STAT_FIELDS = ("n", "median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms", "min_ms", "ci_halfwidth_ms", "settled",
                "thermal_before", "thermal_after")


def stats_of(m: "Measurement") -> dict[str, Any]:
    """The stored statistics of a measurement (not `to_dict()`: that deep-copies every raw sample)."""
    return {f: getattr(m, f) for f in _STAT_FIELDS}
