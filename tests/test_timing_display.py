"""How contended timings and withheld percentiles appear in `harness show` and on the site.

Real sklearn models on real digits; the timing rows are fixed numbers (result_fixtures.fixed_timing) so
the marks are tested without wall-clock noise: one model timed quietly, its twin timed "next to a hog".
"""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

from result_fixtures import TASK, fixed_timing, make_record, write_store, zoo_model
from typer.testing import CliRunner

from harness.cli import app
from harness.sitegen import build_site
from harness.store import Store


def _store(tmp_path: Path) -> Path:
    logreg = zoo_model("logreg")
    twin = dataclasses.replace(logreg, name="logreg-twin")  # the same model, timed while the CPU was busy
    records = [
        make_record(logreg, timing=dataclasses.replace(fixed_timing(0.8, n_timed=40), weights_mb=3.0, load_s=1.5)),
        make_record(twin, timing=fixed_timing(6.5, n_timed=40, contended=True)),
        make_record(zoo_model("knn-3"), timing=fixed_timing(1.5, n_timed=12)),  # p95 withheld (n < 20)
    ]
    return write_store(tmp_path / "h.db", records)


def test_show_marks_contended_timings_and_withholds_percentiles(tmp_path: Path) -> None:
    db = _store(tmp_path)
    result = CliRunner().invoke(app, ["show", "--db", str(db), "--task", TASK])
    assert result.exit_code == 0, result.output
    # table rows (the model name may fold after 10 characters: "logreg-twi" / "n")
    table = result.output.split("* contended:")[0]
    lines = {line.split()[0][:10]: line for line in table.splitlines() if "linear_p" in line}
    assert "6.5*" in lines["logreg-twi"] and "6.8*" in lines["logreg-twi"]
    assert "0.8 " in lines["logreg"] and "*" not in lines["logreg"] and "?" not in lines["logreg"]
    # knn-3: 12 samples support a p50 but neither p95 (needs 20) nor p99 (needs 100)
    assert re.search(r"1\.5\s+—\s+—\s+12\b", lines["knn-3"]), lines["knn-3"]
    assert "* contended: other processes competed for the CPU/GPU" in result.output
    assert "logreg-twin / linear_probe: run-queue wait 40%" in result.output
    assert "— withheld: p95 needs >= 20 samples; p99 needs >= 100 samples" in result.output


def test_site_marks_contended_timings_and_keeps_them_off_the_plot(tmp_path: Path) -> None:
    db = _store(tmp_path)
    out = tmp_path / "site"
    build_site(db, out)
    (task_page,) = [p for p in (out / "tasks").glob("*.html")]
    page = task_page.read_text()
    twin_row = page.split('data-name="logreg-twin"')[1].split("</tr>")[0]
    assert '<span class="badge contended">contended</span>' in twin_row
    assert "run-queue wait 40%" in html.unescape(twin_row)
    quiet_row = page.split('data-name="logreg"')[1].split("</tr>")[0]
    assert "contended" not in quiet_row
    knn_row = page.split('data-name="knn-3"')[1].split("</tr>")[0]
    assert "p95 withheld: needs at least 20 timed samples, this timing has 12" in html.unescape(knn_row)
    svg = page.split("<svg")[1].split("</svg>")[0]
    plotted = set(re.findall(r'<g class="pt[^"]*" data-model="([^"]+)"', svg))
    assert plotted == {"logreg", "knn-3"}  # the contended twin is not on the accuracy-vs-latency plot
    assert "1 contended timing(s) left out" in page
    logreg_page = next(p for p in (out / "models").glob("*.html") if "logreg-twin" not in p.name and "logreg" in p.name)
    summary = logreg_page.read_text().split('<table class="sortable latency">')[1].split("</table>")[0]
    assert '<td class="num">3 MB</td><td class="num">1.5 s</td>' in summary  # weights, load time
    twin_page = next(p for p in (out / "models").glob("*.html") if "logreg-twin" in p.read_text() and "twin" in p.name)
    assert "contended" in twin_page.read_text()


def test_new_timing_columns_are_added_to_an_old_store(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE timings (run_key TEXT PRIMARY KEY, hardware TEXT NOT NULL, device TEXT NOT NULL, "
        "batch_size INTEGER NOT NULL, p50_ms REAL NOT NULL, p95_ms REAL NOT NULL, p99_ms REAL NOT NULL, "
        "mean_ms REAL NOT NULL, std_ms REAL NOT NULL, n_timed INTEGER NOT NULL, items_per_s REAL NOT NULL, "
        "peak_mem_mb REAL, params INTEGER);"
        "INSERT INTO timings VALUES ('k', 'hw', 'cpu', 8, 1, 2, 3, 1, 0.1, 30, 100, 10, 5);"
    )
    conn.close()
    store = Store(path)
    columns = store.db.table("timings").columns_dict
    assert {"contended", "run_wait_frac", "weights_mb", "load_s", "p50_rel_ci", "attempts"} <= set(columns)
    assert (timing := store.reader.timing("k")) is not None and timing.contended is None  # old row: not measured
