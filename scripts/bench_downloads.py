"""The downloads of a large store, encoded in full against through the previous build's lines (exports.RunLines),
side by side in one process:

    python scripts/bench_downloads.py --db /tmp/bench-site/bench.db --new 150

Reads the store's snapshot once, then times, alternating, a full encode (run_rows, both files' text) and a
build that finds the lines of every run but the last `--new` (load them, encode the new runs, both files' text,
save the lines). Prints CPU seconds and the ratio; the files' text is checked equal.
"""

from __future__ import annotations

import argparse
import gc
import marshal
import time
from dataclasses import replace
from pathlib import Path

from harness.sitegen.exports import RunLines, run_rows, run_rows_reusing
from harness.store import StoreReader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a store, e.g. one scripts/bench_site.py generated")
    parser.add_argument("--new", type=int, default=150, help="runs without a line from the previous build")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gc.disable()  # as build_site does
    with StoreReader(args.db) as reader:
        snapshot = reader.snapshot()
    _, before, _ = run_rows_reusing(replace(snapshot, runs=snapshot.runs[: -args.new]), None)
    saved = marshal.dumps(before.flat(), 4)

    def full() -> tuple[str, str]:
        table = run_rows(snapshot)
        return table.json(), table.csv()

    def reusing() -> tuple[str, str]:
        table, lines, encoded = run_rows_reusing(snapshot, RunLines.of(marshal.loads(saved)))
        assert encoded == args.new
        marshal.dumps(lines.flat(), 4)
        return table.json(), table.csv()

    times: dict[str, list[float]] = {"full": [], "reusing": []}
    for _ in range(args.rounds):
        for name, make in (("full", full), ("reusing", reusing)):
            start = time.process_time()
            text = make()
            times[name].append(time.process_time() - start)
        assert full() == text
    best = {name: min(t) for name, t in times.items()}
    print(f"{len(snapshot.runs):,} runs, {args.new:,} new; lines file {len(saved) / 2**20:,.0f} MiB")
    for name, t in times.items():
        print(f"{name:>8}: " + ", ".join(f"{x:.2f}" for x in t) + " CPU-s")
    print(f"reusing / full (best of {args.rounds}): {best['reusing'] / best['full']:.2f}")


if __name__ == "__main__":
    main()
