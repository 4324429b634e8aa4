"""A task table's rows carried from the previous build's data file into the next one, side by side in one
process: parsed and re-dumped (the rows as HTML strings) against kept as the text of their JSON strings
(render.TaskRowReuse, encoded_rows_script):

    python scripts/bench_task_rows.py --site /tmp/bench-site/site

Reads every task data file under the site (data/tasks/*.js), then times, alternating, both ways of reading
each file's rows back and writing the next file's text (the same rows: the text is checked equal). Prints
CPU seconds and the ratio.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

from harness.sitegen.render import encoded_rows_script, read_encoded_rows, rows_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, required=True, help="a built site, e.g. scripts/bench_site.py's")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gc.disable()  # as build_site does
    files = sorted((args.site / "data" / "tasks").glob("*.js"))
    if not files:
        raise SystemExit(f"no task data files under {args.site / 'data' / 'tasks'}; build the site first")
    tables = [(path, path.name.rsplit(".", 2)[1]) for path in files]

    def parsed() -> list[str]:
        out = []
        for path, number in tables:
            text = path.read_text(encoding="utf-8")
            prefix = f'harnessRows("t{number}",'
            rows = json.loads(text[len(prefix) : -len(");\n")])
            out.append(rows_script(f"t{number}", rows))
        return out

    def kept() -> list[str]:
        out = []
        for path, number in tables:
            rows = read_encoded_rows(path, f"t{number}")
            assert rows is not None, path
            out.append(encoded_rows_script(f"t{number}", rows))
        return out

    times: dict[str, list[float]] = {"parsed and re-dumped": [], "kept encoded": []}
    for _ in range(args.rounds):
        for name, way in (("parsed and re-dumped", parsed), ("kept encoded", kept)):
            start = time.process_time()
            texts = way()
            times[name].append(time.process_time() - start)
            del texts
    assert parsed() == kept(), "both ways write the same files"
    n_rows = sum(text.count("<tr ") for text in kept())
    print(f"{len(tables)} task data files, {n_rows:,} rows, {args.rounds} rounds alternating")
    for name, values in times.items():
        print(f"  {name}: " + ", ".join(f"{v:.2f}" for v in values) + " CPU-s")
    ratio = min(times["kept encoded"]) / min(times["parsed and re-dumped"])
    print(f"  ratio (best of each): {ratio:.2f}")


if __name__ == "__main__":
    main()
