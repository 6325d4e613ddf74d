"""Crash safety and sharing of one store between processes (issue 15).

Two jobs, both kept in the store itself so they survive any crash:

- **pending**: a measurement that did not settle is written at once (its row,
  settled=0) and marked here for another try.  A `kill -9` then loses at most
  the item in flight; the next run measures the marked items again.
- **leases**: before measuring an item a process claims it (owner = host:pid,
  with an expiry), so two `hwnas profile` processes, or a Ray farm and a
  laptop, split one plan and neither measures what the other did.  A hardware
  lock, taken around each measurement, keeps two processes from loading the
  same device at once (they take turns).  A lease whose owner process is gone
  from this host counts as expired at once; another host's lease expires after
  its time-to-live, renewed with every item.

Functions, not Store methods, so the store module keeps to its schema and rows.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Iterator

from hwnas.profiler.store import Store, _owner_alive, owner_id

__all__ = ["mark_pending", "clear_pending", "pending_keys", "pending_attempts", "claim", "release", "hardware_lock", "hardware_key",
           "LEASE_TTL_S"]

#: How long a claim holds without renewal (a measurement takes seconds; a phone block well under a minute).
LEASE_TTL_S = 600.0


@contextlib.contextmanager
def _immediate(store: Store) -> Iterator[None]:
    """One write transaction taken up front (BEGIN IMMEDIATE), so check-then-write is atomic across processes."""
    with store._lock:
        db = store._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.rollback()
            raise
        db.commit()


def mark_pending(store: Store, device: str, key: str) -> None:
    """Mark an item for another try (written before its unsettled row, so a crash between keeps the mark)."""
    with _immediate(store):
        store._db.execute(
            "INSERT INTO pending VALUES (?, ?, 1, ?) ON CONFLICT(device, item_key) "
            "DO UPDATE SET attempts = attempts + 1", (device, key, time.time()))


def clear_pending(store: Store, device: str, key: str) -> None:
    """The item's final row is stored: drop its retry mark (after the row, for the same reason)."""
    with _immediate(store):
        store._db.execute("DELETE FROM pending WHERE device=? AND item_key=?", (device, key))


def pending_keys(store: Store, device: str) -> set[str]:
    """Items of a device whose stored row is an unsettled try awaiting another (empty on an old store)."""
    with store._lock:
        try:
            return {r[0] for r in store._db.execute("SELECT item_key FROM pending WHERE device=?", (device,))}
        except Exception:  # a store opened read-only from before these tables existed
            return set()


def pending_attempts(store: Store, device: str) -> dict[str, int]:
    """Tries already spent on each pending item of a device (what a resumed run counts on)."""
    with store._lock:
        try:
            return {k: int(n) for k, n in store._db.execute(
                "SELECT item_key, attempts FROM pending WHERE device=?", (device,))}
        except Exception:  # an old store opened read-only
            return {}


def _done(store: Store, device: str, key: str) -> bool:
    """Stored for good by someone (a row that is not merely pending)."""
    db = store._db
    if db.execute("SELECT 1 FROM pending WHERE device=? AND item_key=?", (device, key)).fetchone():
        return False
    if db.execute("SELECT 1 FROM blocks WHERE device=? AND block_key=?", (device, key)).fetchone():
        return True
    space, _, arch = key.partition(":")
    return bool(arch) and db.execute("SELECT 1 FROM networks WHERE device=? AND space=? AND arch=?",
                                     (device, space, arch)).fetchone() is not None


def claim(store: Store, device: str, key: str, owner: str | None = None, ttl: float = LEASE_TTL_S,
          ignore_stored: bool = False) -> bool:
    """Claim an item for `owner`; False when another live process holds it or already stored it.

    `ignore_stored` when a stored row is no reason to skip: a remeasure, or this
    process's own later round of an item it tried before.
    """
    owner = owner or owner_id()
    now = time.time()
    with _immediate(store):
        db = store._db
        if not ignore_stored and _done(store, device, key):
            return False
        row = db.execute("SELECT owner, expires FROM leases WHERE device=? AND item_key=?", (device, key)).fetchone()
        if row and row[0] != owner and row[1] > now and _owner_alive(row[0]):
            return False
        db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (device, key, owner, now + ttl))
    return True


def release(store: Store, device: str, key: str, owner: str | None = None) -> None:
    """Give an item back (measured and stored, or abandoned)."""
    with _immediate(store):
        store._db.execute("DELETE FROM leases WHERE device=? AND item_key=? AND owner=?",
                          (device, key, owner or owner_id()))


def hardware_key(uri: str) -> str:
    """What two processes must not load at once: a phone by its serial, a host's CPU/GPU by host name."""
    base = uri.partition("?")[0]
    if base.startswith("adb://"):
        return base
    return f"{socket.gethostname()}/{base.split(':')[0]}"


def _waiters(store: Store, hardware: str, owner: str, now: float) -> bool:
    """Whether another live process is waiting for `hardware` (its `hw:` row in the leases table)."""
    rows = store._db.execute("SELECT owner FROM leases WHERE device=? AND owner!=? AND expires>?",
                             (f"hw:{hardware}", owner, now)).fetchall()
    return any(_owner_alive(r[0]) for r in rows)


@contextlib.contextmanager
def hardware_lock(store: Store, hardware: str, owner: str | None = None, ttl: float = LEASE_TTL_S,
                  poll_s: float = 0.05, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the hardware for one measurement; wait (polling) while another live process holds it.

    Fair between processes: a holder that comes back for its next measurement while another
    process waits lets that one go first (without this, a tight measuring loop re-takes the lock
    before a polling waiter ever sees it free).  `timeout_s` None waits as long as the holder
    lives; a dead holder (same host) is taken over at once.
    """
    owner = owner or owner_id()
    wait_key = (f"hw:{hardware}", f"wait:{owner}")
    t0 = time.monotonic()
    waited = False
    while True:
        with _immediate(store):
            now = time.time()
            row = store._db.execute("SELECT owner, expires FROM hw_locks WHERE hardware=?", (hardware,)).fetchone()
            free = row is None or row[0] == owner or row[1] <= now or not _owner_alive(row[0])
            if free and not waited and _waiters(store, hardware, owner, now):
                free = False  # someone was here first: queue behind them once
            if free:
                store._db.execute("INSERT OR REPLACE INTO hw_locks VALUES (?, ?, ?)", (hardware, owner, now + ttl))
                store._db.execute("DELETE FROM leases WHERE device=? AND item_key=?", wait_key)
            else:
                store._db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (*wait_key, owner, now + ttl))
        if free:
            break
        waited = True
        if timeout_s is not None and time.monotonic() - t0 > timeout_s:
            with _immediate(store):
                store._db.execute("DELETE FROM leases WHERE device=? AND item_key=?", wait_key)
            holder = row[0] if row else "another process"
            raise TimeoutError(f"{hardware} stayed busy with another process ({holder})")
        time.sleep(poll_s)
    try:
        yield
    finally:
        with _immediate(store):
            store._db.execute("DELETE FROM hw_locks WHERE hardware=? AND owner=?", (hardware, owner))
