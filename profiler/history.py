"""Every pass and every reference timing of a profile, with timestamps, beside the store's tables.

Why a second pair of tables: the `blocks`/`networks` rows hold one believed
value per item; a later analysis (or a better estimator) needs what that
value rests on: each pass, whether it was believed, re-queued or scaled, and
the device's speed curve at the time.  The tables are created on first write
(IF NOT EXISTS), so a store written before them still opens, and reading
them from such a store gives empty frames; the schema version stays as it is
because an older hwnas reading a newer file simply ignores them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, Mapping

import pandas as pd

from hwnas.profiler.store import Store

__all__ = ["ensure_tables", "put_pass", "set_verdict", "put_reference", "passes", "references", "new_run_id", "resumable"]

_TABLES = """
CREATE TABLE IF NOT EXISTS pass_timings (
    device TEXT NOT NULL, run_id TEXT NOT NULL, item_key TEXT NOT NULL, kind TEXT NOT NULL,
    pass_no INTEGER NOT NULL, timestamp REAL NOT NULL, median_ms REAL, ci_halfwidth_ms REAL, n INTEGER,
    settled INTEGER, scale REAL NOT NULL DEFAULT 1.0, verdict TEXT NOT NULL, reason TEXT, stats TEXT);
CREATE INDEX IF NOT EXISTS pass_timings_device ON pass_timings (device, item_key);
CREATE TABLE IF NOT EXISTS reference_timings (
    device TEXT NOT NULL, run_id TEXT NOT NULL, item_key TEXT NOT NULL, timestamp REAL NOT NULL,
    median_ms REAL, ci_halfwidth_ms REAL, ratio REAL, action TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reference_timings_device ON reference_timings (device, timestamp);
"""

_PASS_COLUMNS = ("device", "run_id", "item_key", "kind", "pass_no", "timestamp", "median_ms", "ci_halfwidth_ms",
                 "n", "settled", "scale", "verdict", "reason", "stats")
_REF_COLUMNS = ("device", "run_id", "item_key", "timestamp", "median_ms", "ci_halfwidth_ms", "ratio", "action")


def new_run_id() -> str:
    """A profile run's id: its start time, readable and sortable."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"


def ensure_tables(store: Store) -> None:
    """Create the history tables if this store has none yet."""
    with store._lock, store._db:  # the store's one connection and lock (one writer per file)
        store._db.executescript(_TABLES)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f or f in (float("inf"), float("-inf")) else f


def put_pass(store: Store, device: str, run_id: str, item_key: str, kind: str, pass_no: int, timestamp: float,
             m: Any, verdict: str, scale: float = 1.0, reason: str = "",
             stats: Mapping[str, Any] | None = None) -> int:
    """One pass of one item: its raw statistics and what the profiler did with it (accepted/requeued/...).

    Written the moment a pass is taken (verdict `taken`), so a `kill -9` loses at most the pass in
    flight; `set_verdict` records the decision once the next reference timing is in.  Returns the row id.

    `stats` (the measurement's full statistics, as stored in `blocks`) lets a resumed run
    rebuild the pass instead of measuring it again.
    """
    row = (device, run_id, item_key, kind, int(pass_no), float(timestamp), _num(m.median_ms),
           _num(m.ci_halfwidth_ms), int(m.n), int(bool(m.settled)), float(scale), verdict, reason or None,
           json.dumps(dict(stats), sort_keys=True, default=str) if stats is not None else None)
    with store._lock, store._db:
        cur = store._db.execute(f"INSERT INTO pass_timings ({', '.join(_PASS_COLUMNS)}) VALUES "
                                f"({', '.join('?' * len(_PASS_COLUMNS))})", row)
    return int(cur.lastrowid)


def set_verdict(store: Store, rowid: int, verdict: str, scale: float = 1.0, reason: str = "") -> None:
    """What the profiler decided about a pass written when it was taken (accepted, scaled, requeued...)."""
    with store._lock, store._db:
        store._db.execute("UPDATE pass_timings SET verdict=?, scale=?, reason=? WHERE rowid=?",
                          (verdict, float(scale), reason or None, int(rowid)))


def put_reference(store: Store, device: str, run_id: str, item_key: str, timestamp: float, m: Any,
                  ratio: float | None, action: str) -> None:
    """One reference timing (a point of the device's speed curve) and the verdict it gave."""
    row = (device, run_id, item_key, float(timestamp), _num(m.median_ms), _num(m.ci_halfwidth_ms), _num(ratio),
           action)
    with store._lock, store._db:
        store._db.execute(f"INSERT INTO reference_timings ({', '.join(_REF_COLUMNS)}) VALUES "
                          f"({', '.join('?' * len(_REF_COLUMNS))})", row)


def _frame(store: Store, table: str, columns: tuple[str, ...], device: str | None, order: str) -> pd.DataFrame:
    where, args = "", ()
    if device is not None:
        where, args = "WHERE device = ?", (store.resolve_device(device),)
    with store._lock:
        try:
            return pd.read_sql_query(f"SELECT {', '.join(columns)} FROM {table} {where} ORDER BY {order}",
                                     store._db, params=args)
        except (sqlite3.OperationalError, pd.errors.DatabaseError) as exc:
            if "no such table" not in str(exc):
                raise
            return pd.DataFrame(columns=list(columns))


def passes(store: Store, device: str | None = None) -> pd.DataFrame:
    """Every pass (of one device or all), oldest first; empty for a store written before passes were kept."""
    return _frame(store, "pass_timings", _PASS_COLUMNS, device, "timestamp, rowid")


def references(store: Store, device: str | None = None) -> pd.DataFrame:
    """Every reference timing (the speed curve), oldest first; empty for an older store."""
    return _frame(store, "reference_timings", _REF_COLUMNS, device, "timestamp, rowid")


def resumable(store: Store, device: str, keys: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Accepted passes (with their statistics) of items not yet stored: what a resumed profile reuses."""
    df = passes(store, device) if keys else pd.DataFrame()
    out: dict[str, list[dict[str, Any]]] = {}
    if df.empty:
        return out
    df = df[df["verdict"].isin(("accepted", "scaled")) & df["item_key"].isin(keys) & df["stats"].notna()]
    for row in df.itertuples(index=False):
        out.setdefault(row.item_key, []).append(
            {"timestamp": row.timestamp, "scale": row.scale, "settled": bool(row.settled),
             "median_ms": row.median_ms, "stats": json.loads(row.stats)})
    return out
