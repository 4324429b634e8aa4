"""Several `harness run` processes on one store: each job computed once and recorded once; a killed
claimant does not block its jobs."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import HarnessError
from harness.store import Store
from harness.store.claims import JobClaims

SUITE = """
name: busy
seeds: [0, 1, 2]
tasks:
  - name: bbc-news
    subsample: {train: 150, validation: 60, test: 100, seed: 0}
  - name: digits
    subsample: {train: 300, validation: 100, test: 200, seed: 0}
models:
  - {name: tfidf, family: tfidf}
  - {name: pixels, family: pixels}
protocols:
  - linear_probe
  - {name: probe-4shot, protocol: linear_probe, k_shot: 4, repeats: 3}
timing: {warmup: 1, batch1_iters: 5, throughput_batches: 1}
bootstrap: {n_boot: 200, seed: 0}
"""
JOBS = 12  # 2 models x 1 task each x 2 protocols x 3 seeds


def _ran(output: str) -> int:
    text = " ".join(output.split())
    if re.search(r"0 jobs run: all \d+ selected job\(s\) already in", text):
        return 0
    match = re.search(r"(\d+) job\(s\) run \(", text)
    assert match, text
    return int(match.group(1))


def _table(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_two_processes_on_one_store_compute_and_record_each_job_once(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    db = tmp_path / "shared.db"
    Store(db).close()  # both processes find the schema in place
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "run", str(suite), "--db", str(db), "--quiet", "--label", label],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        for label in ("first", "second")
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    ran = [_ran(o) for o in outputs]
    assert sum(ran) == JOBS, (ran, outputs)  # computed once: no job ran in both processes
    runs = _table(db, "SELECT key, label, status FROM runs")
    assert len(runs) == JOBS == len({k for k, _, _ in runs}) and {s for _, _, s in runs} == {"done"}
    # Recorded once: each process's rows carry its label, as many as it ran (none replaced by the other).
    labels = [label for _, label, _ in runs]
    assert [labels.count("first"), labels.count("second")] == ran
    assert _table(db, "SELECT count(*) FROM claims") == [(0,)]
    # Both finished; a third run finds everything.
    again = CliRunner().invoke(app, ["run", str(suite), "--db", str(db), "--quiet"])
    assert again.exit_code == 0 and _ran(again.output) == 0


def test_sigkilled_claimant_does_not_block_its_job(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    db = tmp_path / "shared.db"
    Store(db).close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(suite), "--db", str(db), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    claimed: list[tuple] = []
    while time.monotonic() < deadline and proc.poll() is None and not claimed:
        try:
            claimed = _table(db, "SELECT key, owner FROM claims")
        except sqlite3.Error:
            claimed = []
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and claimed, "the claimant finished before it could be killed"
    assert claimed[0][1].split(":")[1] == str(proc.pid)
    left = _table(db, "SELECT key FROM claims")
    assert len(left) == 1
    # Default lease (minutes): the re-run must not wait for it, the holder's process is gone.
    t0 = time.monotonic()
    result = CliRunner().invoke(app, ["run", str(suite), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - t0 < 600
    runs = _table(db, "SELECT key, status FROM runs")
    assert len(runs) == JOBS and left[0][0] in {k for k, _ in runs}
    assert _table(db, "SELECT count(*) FROM claims") == [(0,)]


@pytest.mark.parametrize(
    ("owner", "age_s", "expected"),
    [
        ("elsewhere.example:4242:abcd", 1.0, "busy"),  # another host, fresh heartbeat: its lease holds
        ("elsewhere.example:4242:abcd", 90.0, "claimed"),  # another host, silent past the lease: expired
        (f"{socket.gethostname()}:{os.getpid()}:other", 1.0, "busy"),  # a live process here
    ],
)
def test_claim_lease(tmp_path: Path, owner: str, age_s: float, expected: str) -> None:
    store = Store(tmp_path / "s.db")
    now = time.time()
    store.db.execute("INSERT INTO claims (key, owner, claimed_at, heartbeat) VALUES ('k', ?, ?, ?)", [owner, now, now - age_s])
    claims = JobClaims(store, "me:1:x", lease_s=60.0, seen={"k": None})
    assert claims.claim("k") == expected
    holder = store.db.execute("SELECT owner FROM claims WHERE key = 'k'").fetchone()[0]
    assert holder == ("me:1:x" if expected == "claimed" else owner)


def _hold_write_lock(db: Path, seconds: float, store: bool) -> threading.Thread:
    """A thread holding the store's write lock for `seconds`: through a harness Store (another run) or a plain
    SQLite connection (another program); returns once the lock is held."""
    held = threading.Event()

    def hold() -> None:
        if store:
            writer = Store(db)
            writer.begin_immediate()
            conn = writer.db.conn
        else:
            conn = sqlite3.connect(db, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()
        if store:
            writer.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    return thread


def test_a_write_waits_for_another_run_but_not_long_for_another_program(tmp_path: Path) -> None:
    """Another harness run holding the write lock longer than the short wait is waited for (runs share a
    store); a lock another program holds is refused within seconds, not after 30 s at every write."""
    db = tmp_path / "s.db"
    Store(db).close()
    store = Store(db)
    holder = _hold_write_lock(db, 3.0, store=True)
    with store.transaction() as conn:
        conn.execute("DELETE FROM claims")
    holder.join()
    holder = _hold_write_lock(db, 8.0, store=False)
    t0 = time.monotonic()
    with pytest.raises(HarnessError, match="locked"), store.transaction() as conn:
        conn.execute("DELETE FROM claims")
    assert time.monotonic() - t0 < 6
    holder.join()
    store.close()
