"""Per-job claims with a lease, so several `harness run` processes on one store compute each job once.

Before a driver hands a job to its executor it claims the job's key in the store's `claims` table (one
IMMEDIATE transaction). A claim held by another live process makes the job wait; a job another process
recorded meanwhile is dropped. A claim is live while its holder's heartbeat (refreshed by a thread every
lease/4 seconds) is younger than the lease; a holder on this machine whose process is gone (SIGKILL,
OOM-killer) releases its claims at once. `Store.write_run` deletes the claim with the run it records.
"""

from __future__ import annotations

import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from harness.errors import HarnessError
from harness.store.reader import store_error
from harness.store.rows import RunState
from harness.store.writer import BUSY_ALONE_S, Store

DEFAULT_LEASE_S = 120.0
LEASE_ENV = "HARNESS_CLAIM_LEASE_S"  # seconds; how long a silent holder keeps its claims

ClaimOutcome = Literal["claimed", "busy", "recorded"]


def lease_seconds() -> float:
    """$HARNESS_CLAIM_LEASE_S, checked: a lease that is not a positive finite number of seconds was ignored
    (nan, -1: the default, silently) or taken as endless (inf: a crashed run's claims held forever)."""
    text = os.environ.get(LEASE_ENV)
    if text is None:
        return DEFAULT_LEASE_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise HarnessError(
            f"${LEASE_ENV} is {text!r}; expected a positive number of seconds (how long a run that "
            f"stopped answering keeps its claimed jobs before another run takes them; default {DEFAULT_LEASE_S:g}). "
            "Set it to e.g. 300, or unset it."
        )
    return value


def new_owner() -> str:
    """host:pid:random — the pid lets a process on the same host see that a holder died."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_alive(owner: str, heartbeat: float, now: float, lease_s: float) -> bool:
    if now - heartbeat > lease_s:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


@dataclass
class JobClaims:
    store: Store
    owner: str
    lease_s: float
    seen: Mapping[str, RunState]  # the stored runs among the planned keys, as they were when planned

    def claim(self, key: str) -> ClaimOutcome:
        """Claim `key` unless another live process holds it or recorded it since the plan."""
        db = self.store.db
        now = time.time()
        try:
            self.store.begin_immediate()
        except sqlite3.DatabaseError as exc:  # busy past the timeout: another program holds the write lock
            raise store_error(self.store.path, exc, "written") from None
        try:
            row = db.execute("SELECT status, finished_at FROM runs WHERE key = ?", [key]).fetchone()
            before = self.seen.get(key)
            if (tuple(row) if row else None) != ((before.status, before.finished_at) if before else None):
                outcome: ClaimOutcome = "recorded"
            else:
                held = db.execute("SELECT owner, heartbeat FROM claims WHERE key = ?", [key]).fetchone()
                if held and held[0] != self.owner and _holder_alive(held[0], float(held[1]), now, self.lease_s):
                    outcome = "busy"
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO claims (key, owner, claimed_at, heartbeat) VALUES (?, ?, ?, ?)",
                        [key, self.owner, now, now],
                    )
                    outcome = "claimed"
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return outcome

    def release_all(self) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM claims WHERE owner = ?", [self.owner])

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Refresh this owner's claims every lease/4 s from a thread (its own connection) while the body runs."""
        stop = threading.Event()

        def beat() -> None:
            try:
                conn = sqlite3.connect(str(self.store.path), timeout=BUSY_ALONE_S, isolation_level=None)
            except sqlite3.Error:  # the store gone or unreadable: the run's own next write says so
                return
            try:
                while not stop.wait(self.lease_s / 4):
                    try:
                        conn.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", [time.time(), self.owner])
                    except sqlite3.Error:
                        continue  # busy past the timeout (kept short, so that a stopped run is not kept waiting): try again next beat
            finally:
                conn.close()

        thread = threading.Thread(target=beat, name="harness-claims-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.release_all()
