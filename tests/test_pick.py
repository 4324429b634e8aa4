"""`harness pick` on a store of real scikit-learn models trained on real digits data.

Latencies are fixed numbers (result_fixtures.fixed_timing) so the constraint logic is tested without
wall-clock noise; metrics, predictions and the paired tests are real.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import typer
from result_fixtures import (
    HW_A,
    HW_B,
    TASK,
    fixed_timing,
    make_record,
    one_class_record,
    task_metrics,
    write_store,
    zoo_model,
)
from typer.testing import CliRunner

import harness.pick
from harness.commands.pick_cmd import pick_command
from harness.errors import HarnessError
from harness.pick import Constraints, pick
from harness.units import parse_bytes, parse_count

REAL_CURRENT_HARDWARE = harness.pick.current_hardware
# p50 latency (ms) each model is stored with on HW_A
LATENCY = {
    "svm-rbf": 2.0,
    "knn-3": 1.2,
    "logreg": 0.15,
    "pca16-logreg": 0.2,
    "gaussian-nb": 0.1,
    "tree-depth4": 0.05,
}


@pytest.fixture(autouse=True)
def not_a_timed_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's fingerprint is none of the stored ones (and torch need not be imported)."""
    monkeypatch.setattr(harness.pick, "current_hardware", lambda: "this-machine")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = []
    for name, p50 in LATENCY.items():
        model = zoo_model(name)
        records.append(make_record(model, timing=fixed_timing(p50, params=model.params)))
    return write_store(tmp_path_factory.mktemp("pick") / "pick.db", records)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("50M", 50_000_000), ("1.5B", 1_500_000_000), ("500k", 500_000), ("22700000", 22_700_000)],
)
def test_parse_count(text: str, expected: int) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2GB", 2_000_000_000), ("512MB", 512_000_000), ("1.5GiB", 1.5 * 2**30), ("300 kb", 300_000)],
)
def test_parse_bytes(text: str, expected: float) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_count, "50MB", "did you mean --max-memory?"),
        (parse_count, "fifty", "not a parameter count"),
        (parse_bytes, "2", "give a number with a unit"),
        (parse_bytes, "2 parsecs", "not a memory size"),
    ],
)
def test_bad_sizes_are_clear_errors(parse, text: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        parse(text)


def test_recommends_the_cheapest_model_tied_with_the_best(db: Path) -> None:
    result = pick(db, TASK)
    assert result.hardware == HW_A and "most common" in result.hardware_reason
    # svm-rbf is best; knn-3 is < 1 point behind on 540 examples (not significant) and faster
    assert result.tie_group == ("svm-rbf [linear_probe]", "knn-3 [linear_probe]")
    assert result.recommendation is not None and result.recommendation.model == "knn-3"
    text = result.explanation
    assert "knn-3 [linear_probe] is not significantly worse (paired bootstrap p=" in text
    assert "p50 1.20 ms" in text and "p50 2.00 ms" in text and "svm-rbf" in text
    ranks = {c.model: c.rank for c in result.candidates}
    assert ranks == {
        "svm-rbf": 1,
        "knn-3": 1,
        "logreg": 3,
        "pca16-logreg": 4,
        "gaussian-nb": 5,
        "tree-depth4": 6,
    }


def test_candidates_whose_interval_lies_below_the_best_are_worse_without_a_paired_test(db: Path) -> None:
    """Only candidates whose 95% CI reaches the best's are paired-tested (as on the site): Holm over every
    candidate made no bootstrap test significant at 1,000 candidates and tied them all with the best."""
    result = pick(db, TASK)
    by_model = {c.model: c for c in result.candidates}
    screened = ["logreg", "pca16-logreg", "gaussian-nb", "tree-depth4"]
    assert all(by_model[m].ci_high < by_model["svm-rbf"].ci_low for m in screened)  # type: ignore[operator]
    assert by_model["knn-3"].p_value is not None  # its interval reaches the best's: tested
    assert [(by_model[m].rank, by_model[m].p_value) for m in screened] == [(3, None), (4, None), (5, None), (6, None)]
    assert any(n.startswith("4 candidate(s) whose 95% CI lies wholly below the best's") for n in result.notes)


def test_a_test_that_cannot_reach_significance_says_so(db: Path) -> None:
    """With n_boot resamples the smallest bootstrap p is 1/(n_boot + 1): below alpha / tests, nothing can be
    told apart, and the note says how many resamples would."""
    weak = pick(db, TASK, alpha=0.005, n_boot=100)
    assert any("with 100 resamples the smallest p is 1/101" in n and "at least 200" in n for n in weak.notes)
    assert not any("smallest p" in n for n in pick(db, TASK, alpha=0.005, n_boot=1000).notes)


def test_the_table_lists_the_best_candidates_and_the_tie_group(db: Path) -> None:
    from harness.cli import app

    runner = CliRunner()
    one = runner.invoke(app, ["pick", "--task", TASK, "--db", str(db), "--top", "1"], env={"COLUMNS": "200"})
    assert one.exit_code == 0, one.output
    assert "svm-rbf" in one.output and "knn-3" in one.output  # the best, and tied with it: always listed
    assert "logreg" not in one.output and "... and 4 more candidates (--top 0 lists them all" in one.output
    every = runner.invoke(app, ["pick", "--task", TASK, "--db", str(db), "--top", "0"], env={"COLUMNS": "200"})
    assert "tree-depth4" in every.output and "more candidates" not in every.output


def test_constraints_filter_before_forming_the_tie_group(db: Path) -> None:
    result = pick(db, TASK, constraints=Constraints(max_latency_ms=1.0, at="p95"))
    excluded = {c.model for c in result.candidates if not c.eligible}
    assert excluded == {"svm-rbf", "knn-3"}
    assert result.recommendation is not None and result.recommendation.model == "logreg"
    assert result.tie_group == ("logreg [linear_probe]",)
    assert "significantly worse" in result.explanation
    by_params = pick(db, TASK, constraints=Constraints(max_params=parse_count("50K")))
    assert by_params.recommendation is not None and by_params.recommendation.model == "svm-rbf"


def test_pareto_fronts(db: Path) -> None:
    result = pick(db, TASK)
    lat = {c.model for c in result.candidates if c.pareto_latency}
    size = {c.model for c in result.candidates if c.pareto_size}
    # pca16-logreg is slower and worse than logreg: dominated on both fronts
    assert lat == {"svm-rbf", "knn-3", "logreg", "gaussian-nb", "tree-depth4"}
    assert "pca16-logreg" not in size and {"svm-rbf", "logreg", "tree-depth4"} <= size


def test_nothing_fits_names_the_most_excluding_constraint_and_the_nearest_miss(db: Path) -> None:
    result = pick(db, TASK, constraints=Constraints(max_latency_ms=0.5, max_params=50))
    assert result.recommendation is None and result.tie_group == ()
    assert result.excluded_most_by == "params"
    assert result.nearest_miss is not None and result.nearest_miss.model == "tree-depth4"
    assert "--max-params excludes the most: 6 of 6" in result.explanation
    assert "Nearest miss: tree-depth4 [linear_probe]" in result.explanation
    assert "exceeded by 86% (93 parameters)" in result.explanation


def test_a_limit_so_small_the_excess_overflows_is_not_taken_for_an_unknown_value(db: Path) -> None:
    """1e-320 ms: value / limit overflowed to inf, which marks an unknown value ("6 of them have no recorded
    value"), though every candidate has its latency."""
    result = pick(db, TASK, constraints=Constraints(max_latency_ms=1e-320))
    assert result.recommendation is None
    assert "no recorded value" not in result.explanation
    assert result.nearest_miss is not None and "times over" in result.explanation
    assert "exceeded by 4900% (p50 0.05 ms)" in pick(db, TASK, constraints=Constraints(max_latency_ms=1e-3)).explanation
    assert "exceeded 5e+03 times over" in pick(db, TASK, constraints=Constraints(max_latency_ms=1e-5)).explanation


def test_latency_uses_one_hardware_fingerprint_and_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [
        make_record(zoo_model("svm-rbf"), timing=fixed_timing(2.0, hardware=HW_A)),
        make_record(zoo_model("knn-3"), timing=fixed_timing(1.2, hardware=HW_B)),
        make_record(zoo_model("logreg"), timing=fixed_timing(0.15, hardware=HW_A)),
    ]
    db = write_store(tmp_path / "mixed.db", records)
    default = pick(db, TASK, constraints=Constraints(max_latency_ms=5.0))
    assert default.hardware == HW_A and "most common among the timed runs (2 of 3)" in default.hardware_reason
    knn = next(c for c in default.candidates if c.model == "knn-3")
    assert knn.latency_ms is None and not knn.eligible  # timed on other hardware only: latency unknown here
    on_b = pick(db, TASK, hardware=HW_B[:6])
    assert on_b.hardware == HW_B and "as requested" in on_b.hardware_reason
    with pytest.raises(HarnessError, match="Unknown hardware fingerprint"):
        pick(db, TASK, hardware="hw-c")
    with pytest.raises(HarnessError, match="this machine .* has no timings"):
        pick(db, TASK, hardware="current")
    monkeypatch.setattr(harness.pick, "current_hardware", lambda: HW_B)
    current = pick(db, TASK)
    assert current.hardware == HW_B and "this machine" in current.hardware_reason
    only_latency_unknown = pick(db, TASK, constraints=Constraints(max_latency_ms=0.01), hardware=HW_B)
    assert "have no recorded value on hardware" in only_latency_unknown.explanation


def test_this_machines_fingerprint_is_worked_out_only_when_a_timed_one_could_be_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fingerprinting this machine imports torch, scipy and onnxruntime (~5 s of a pick): skipped when every
    timed fingerprint's stored description names another CPU or platform (the fingerprint hashes both)."""
    import sqlite3

    from harness.timing import host

    db = write_store(tmp_path / "described.db", [make_record(zoo_model("knn-3"), timing=fixed_timing(1.2, hardware=HW_B))])
    calls: list[int] = []
    monkeypatch.setattr(harness.pick, "current_hardware", lambda: calls.append(1) or "this-machine")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE hardware SET cpu = 'Another CPU', platform = ? WHERE fingerprint = ?", [host()[1], HW_B])
    conn.commit()
    result = pick(db, TASK)
    assert calls == [] and result.hardware == HW_B and "this machine has none" in result.hardware_reason
    conn.execute("UPDATE hardware SET cpu = ? WHERE fingerprint = ?", [host()[0], HW_B])  # could be this one
    conn.commit()
    conn.close()
    pick(db, TASK)
    assert calls == [1]


def test_contended_timings_and_withheld_percentiles_are_left_out(tmp_path: Path) -> None:
    knn = zoo_model("knn-3")
    records = [
        make_record(zoo_model("svm-rbf"), timing=fixed_timing(2.0)),
        # knn-3 twice: seed 0 timed quietly at 1.2 ms, seed 1 timed next to a CPU hog at 50 ms
        make_record(knn, timing=fixed_timing(1.2)),
        make_record(dataclasses.replace(knn, seed=1), timing=fixed_timing(50.0, contended=True)),
        # logreg timed only while contended (a fast-looking 0.1 ms must not make it eligible)
        make_record(zoo_model("logreg"), timing=fixed_timing(0.1, contended=True)),
    ]
    db = write_store(tmp_path / "contended.db", records)
    result = pick(db, TASK, constraints=Constraints(max_latency_ms=5.0))
    by_model = {c.model: c for c in result.candidates}
    assert by_model["knn-3"].latency_ms == 1.2  # the median would be 25.6 with the contended one
    assert by_model["knn-3"].latency_note == "1 contended timing(s) ignored"
    assert by_model["logreg"].latency_ms is None and not by_model["logreg"].eligible
    assert by_model["logreg"].latency_note == "no usable timing: 1 contended timing(s) ignored"
    assert "logreg [linear_probe]: no usable timing: 1 contended timing(s) ignored." in result.notes
    assert result.recommendation is not None and result.recommendation.model == "knn-3"
    # p99 from 30 samples is only the largest sample: withheld, so no candidate has a p99
    p99 = pick(db, TASK, constraints=Constraints(max_latency_ms=5.0, at="p99"))
    assert all(c.latency_ms is None for c in p99.candidates) and p99.recommendation is None
    assert "p99 withheld (p99 needs >= 100 samples, this timing has 30)" in by_note(p99, "svm-rbf")


def by_note(result: harness.pick.PickResult, model: str) -> str:
    return next(c.latency_note or "" for c in result.candidates if c.model == model)


def test_unknown_task_protocol_or_metric(db: Path) -> None:
    with pytest.raises(HarnessError, match=f'Did you mean "{TASK}"'):
        pick(db, "digits-fixtur")
    with pytest.raises(HarnessError, match='Did you mean "linear_probe"'):
        pick(db, TASK, protocol="linear-probe")
    with pytest.raises(HarnessError, match='Did you mean "macro_f1"'):
        pick(db, TASK, metric="macro-f1")
    with pytest.raises(HarnessError, match="does not exist"):
        pick(db.parent / "missing.db", TASK)


def test_cli_json_and_exit_codes(db: Path) -> None:
    from harness.cli import user_errors

    app = typer.Typer()
    app.command("pick")(user_errors(pick_command))
    app.command("noop")(lambda: None)  # a second command keeps "pick" a subcommand
    runner = CliRunner()
    ok = runner.invoke(app, ["pick", "--task", TASK, "--db", str(db), "--max-latency-ms", "1.5", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    # without svm-rbf (too slow), knn-3 leads; logreg is tied with it and 8x faster
    assert data["tie_group"] == ["knn-3 [linear_probe]", "logreg [linear_probe]"]
    assert data["recommendation"]["model"] == "logreg" and data["hardware"] == HW_A
    assert data["recommendation"]["latency_ms"] == pytest.approx(0.15)
    assert data["recommendation"]["tied_with"] == "knn-3 [linear_probe]"
    none = runner.invoke(app, ["pick", "--task", TASK, "--db", str(db), "--max-params", "50", "--json"])
    assert none.exit_code == 1
    assert json.loads(none.output)["nearest_miss"]["model"] == "tree-depth4"
    table = runner.invoke(app, ["pick", "--task", TASK, "--db", str(db)])
    assert table.exit_code == 0 and "Recommended: knn-3" in table.output
    bad = runner.invoke(app, ["pick", "--task", TASK, "--db", str(db), "--max-memory", "2"])
    assert bad.exit_code == 2 and "give a number with a unit" in " ".join(bad.output.split())


def test_current_hardware_is_the_timing_modules_fingerprint() -> None:
    from harness.timing import hardware_info

    assert REAL_CURRENT_HARDWARE() == hardware_info()["fingerprint"]


def test_a_run_whose_metric_is_undefined_is_no_candidate(tmp_path: Path) -> None:
    """A run whose main metric is undefined (MCC on a test set of one class: n/a, no stored value) was
    recommended as "with mcc nan"; it is left out with a note, and with no other run pick says why."""
    metrics = task_metrics(("accuracy", "mcc"), "mcc")
    good = make_record(zoo_model("logreg"), timing=fixed_timing(0.15), metrics=metrics)
    bad = one_class_record(make_record(zoo_model("tree-depth4"), timing=fixed_timing(0.05), metrics=metrics), metrics)
    assert "mcc" in bad.selected["metrics_not_applicable"]
    result = pick(write_store(tmp_path / "both.db", [good, bad], metrics), TASK)
    assert result.recommendation is not None and result.recommendation.model == "logreg"
    assert [c.model for c in result.candidates] == ["logreg"]
    assert any("Not candidates" in n and "tree-depth4 [linear_probe]" in n for n in result.notes)
    with pytest.raises(HarnessError, match=f'No run of task "{TASK}" has a value of mcc: it is undefined'):
        pick(write_store(tmp_path / "alone.db", [bad], metrics), TASK)
