"""`harness compare` on stores built from real scikit-learn models trained on real digits data."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import typer
from result_fixtures import (
    HW_A,
    HW_B,
    LABELS,
    TrainedModel,
    failed_record,
    fixed_timing,
    logreg,
    make_record,
    measured_timing,
    one_class_record,
    task_metrics,
    train,
    write_store,
)
from typer.testing import CliRunner

from harness.commands.compare_cmd import compare, export_baseline
from harness.compare import (
    Policy,
    compare_results,
    load_policy,
    load_results,
    render_json,
    render_junit,
    render_markdown,
    write_baseline,
)
from harness.errors import ConfigError, HarnessError
from harness.registry import discover_metrics
from harness.tasks import MetricRef


@pytest.fixture(scope="module")
def models() -> dict[str, TrainedModel]:
    return {
        "full": train("logreg", logreg()),  # the whole train split
        "damaged": train("logreg", logreg(), per_class=3),  # 3 examples per class
        "seed0": train("logreg", logreg(), bootstrap_seed=0, seed=0),  # same config, two seeds
        "seed1": train("logreg", logreg(), bootstrap_seed=1, seed=1),
    }


def _same_config(model: TrainedModel, like: TrainedModel) -> TrainedModel:
    """The candidate run of the same protocol configuration (only its training data/seed differ)."""
    return dataclasses.replace(model, protocol_config=like.protocol_config)


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory, models: dict[str, TrainedModel]) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("compare")
    full, damaged = models["full"], _same_config(models["damaged"], models["full"])
    return {
        "base": write_store(tmp / "base.db", [make_record(full, timing=fixed_timing(1.0))]),
        "damaged": write_store(tmp / "damaged.db", [make_record(damaged, timing=fixed_timing(1.0))]),
        "seed0": write_store(tmp / "seed0.db", [make_record(models["seed0"])]),
        "seed1": write_store(tmp / "seed1.db", [make_record(_same_config(models["seed1"], models["seed0"]))]),
        "labelled": write_store(
            tmp / "labelled.db",
            [
                (make_record(full, label="main", git_hash="a1b2c3d4e5"), "main"),
                (make_record(damaged, label="pr-17", git_hash="f6e5d4c3b2"), "pr-17"),
            ],
        ),
    }


def _report(base: Path, cand: Path, policy: Policy | None = None, **kw: str):
    baseline, candidate = load_results(base, kw.get("base_sel")), load_results(cand, kw.get("cand_sel"))
    return compare_results(baseline, candidate, policy or Policy())


def test_damaged_candidate_is_a_significant_regression(dbs: dict[str, Path]) -> None:
    report = _report(dbs["base"], dbs["damaged"])
    assert report.exit_code == 1
    (pair,) = report.pairs
    assert (pair.model, pair.task, pair.protocol) == ("logreg", "digits-fixture", "linear_probe")
    assert pair.verdict == "regression"
    f1 = pair.metric("macro_f1")
    assert f1 is not None and f1.paired and f1.test == "paired bootstrap"
    assert f1.diff < -0.1
    assert f1.ci_high is not None and f1.ci_high < 0
    assert f1.p_value is not None and f1.p_value < 0.01
    acc = pair.metric("accuracy")
    assert acc is not None and acc.test.startswith("McNemar chi2")
    assert acc.p_value is not None and acc.p_value < 1e-6
    assert acc.n_examples == 540
    assert "macro_f1 dropped by" in pair.reasons[0]


def test_same_configuration_with_another_seed_is_not_flagged(dbs: dict[str, Path]) -> None:
    report = _report(dbs["seed0"], dbs["seed1"])
    (pair,) = report.pairs
    assert pair.verdict == "ok", pair.reasons
    assert report.exit_code == 0
    assert pair.baseline_seeds == (0,) and pair.candidate_seeds == (1,)
    assert any("Seeds differ" in n for n in pair.notes)
    f1 = pair.metric("macro_f1")
    assert f1 is not None and f1.ci_low is not None and f1.ci_low < 0 < (f1.ci_high or 0)


def test_several_seeds_per_side_are_averaged_with_a_joint_paired_bootstrap(tmp_path: Path, models) -> None:
    s0, s1 = models["seed0"], _same_config(models["seed1"], models["seed0"])
    base = write_store(tmp_path / "b.db", [make_record(s0), make_record(s1)])
    damaged = [
        _same_config(train("logreg", logreg(), per_class=3, seed=seed), models["seed0"]) for seed in (0, 1)
    ]
    for cand_models, verdict in (([s0, s1], "ok"), (damaged, "regression")):
        cand = write_store(tmp_path / f"c-{verdict}.db", [make_record(m) for m in cand_models])
        (pair,) = _report(base, cand).pairs
        assert pair.verdict == verdict
        assert pair.baseline_seeds == (0, 1)
        f1, acc = pair.metric("macro_f1"), pair.metric("accuracy")
        assert f1 is not None and "seed-averaged, 2 vs 2 seeds" in f1.test
        assert acc is not None and "seed-averaged" in acc.test  # McNemar needs one prediction per example


def test_labelled_result_sets_in_one_database(dbs: dict[str, Path]) -> None:
    db = dbs["labelled"]
    report = _report(db, db, base_sel="main", cand_sel="pr-17")
    assert [p.verdict for p in report.pairs] == ["regression"]
    by_git = _report(db, db, base_sel="git:a1b2c3", cand_sel="git:f6e5d4")
    assert [p.verdict for p in by_git.pairs] == ["regression"]
    with pytest.raises(HarnessError, match='Did you mean "pr-17"') as err:
        load_results(db, "pr-71")
    assert "labels: main, pr-17" in str(err.value)


def test_exported_baseline_json_round_trips_and_compares_like_the_database(
    dbs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "baseline.json"
    write_baseline(load_results(dbs["base"]), out)
    data = json.loads(out.read_text())
    assert data["format"] == "harness-baseline" and len(data["runs"]) == 1
    run = data["runs"][0]
    assert len(run["predictions"]["ids"]) == len(run["predictions"]["preds"]) == 540
    assert run["data_fingerprint"] == load_results(dbs["base"]).runs[0].data_fingerprint
    assert run["config"]["model"]["name"] == "logreg"
    assert run["timing"]["hardware"] == HW_A
    assert len(out.read_text().splitlines()) < 20  # one run per line: a small, diffable committed file

    from_json = _report(out, dbs["damaged"])
    from_db = _report(dbs["base"], dbs["damaged"])
    assert from_json.exit_code == from_db.exit_code == 1
    assert from_json.pairs[0].metrics == from_db.pairs[0].metrics
    assert from_json.pairs[0].latency == from_db.pairs[0].latency


def test_only_the_newest_run_of_a_job_counts(tmp_path: Path, models) -> None:
    full, damaged = models["full"], _same_config(models["damaged"], models["full"])
    base = write_store(tmp_path / "b.db", [make_record(full)])
    rerun = make_record(full, suite="rerun", finished_at="2025-02-01T00:00:00+00:00")
    cand = write_store(
        tmp_path / "c.db", [make_record(damaged), rerun]
    )  # damaged first, then a newer good run
    report = _report(base, cand)
    assert [p.verdict for p in report.pairs] == ["ok"]
    assert any("1 older run(s)" in n for n in report.notes)


def test_compare_never_writes_to_the_databases_it_reads(dbs: dict[str, Path]) -> None:
    before = {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in dbs.items() if k in ("base", "damaged")}
    _report(dbs["base"], dbs["damaged"])
    assert {k: (dbs[k].read_bytes(), dbs[k].stat().st_mtime_ns) for k in before} == before
    with pytest.raises(HarnessError, match="does not exist"):
        load_results(dbs["base"].parent / "nope.db")
    assert not (dbs["base"].parent / "nope.db").exists()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"data_fingerprint": "0000000000000000"}, "data fingerprint changed"),
        ({"task_version": "2"}, "task version changed"),
        ({"revision": "v2"}, "model revision changed"),
        (
            {"protocol_config": {"estimator": "logreg", "C": 0.1}},
            "protocol config changed (config.C: null -> 0.1",
        ),
    ],
)
def test_changed_data_task_protocol_or_revision_is_not_comparable(
    tmp_path: Path, models, change, reason
) -> None:
    full = dataclasses.replace(models["full"], protocol_config={"estimator": "logreg"})
    candidate_model = full
    record_kw = dict(change)
    if "protocol_config" in record_kw:
        candidate_model = dataclasses.replace(full, protocol_config=record_kw.pop("protocol_config"))
    base = write_store(tmp_path / "b.db", [make_record(full)])
    cand = write_store(tmp_path / "c.db", [make_record(candidate_model, **record_kw)])
    report = _report(base, cand)
    (pair,) = report.pairs
    assert pair.verdict == "not_comparable"
    assert any(reason in r for r in pair.reasons), pair.reasons
    # Nothing else to compare: the gate tested nothing, which does not pass unless asked (it passed, exit 0).
    assert report.exit_code == 1 and any("Nothing tested: 1 (model, task, protocol)" in p for p in report.problems)
    assert _report(base, cand, Policy(allow_nothing_comparable=True)).exit_code == 0
    assert _report(base, cand, Policy(fail_on_not_comparable=True)).exit_code == 1
    # Beside a pair that was tested, a not comparable one does not fail the gate by default.
    other = dataclasses.replace(full, name="other")
    base2 = write_store(tmp_path / "b2.db", [make_record(full), make_record(other)])
    cand2 = write_store(tmp_path / "c2.db", [make_record(candidate_model, **record_kw), make_record(other)])
    mixed = _report(base2, cand2)
    assert sorted(p.verdict for p in mixed.pairs) == ["not_comparable", "ok"] and mixed.exit_code == 0


def test_latency_on_different_hardware_is_reported_as_not_comparable(tmp_path: Path, models) -> None:
    full = models["full"]
    base = write_store(tmp_path / "b.db", [make_record(full, timing=fixed_timing(1.0, hardware=HW_A))])
    cand = write_store(tmp_path / "c.db", [make_record(full, timing=fixed_timing(9.0, hardware=HW_B))])
    report = _report(base, cand, Policy(max_latency_ratio=1.1))
    (pair,) = report.pairs
    assert pair.latency is not None and pair.latency.status == "not_comparable"
    assert HW_A in pair.latency.note and HW_B in pair.latency.note
    assert pair.verdict == "ok" and report.exit_code == 0  # 9x slower, but on other hardware: no verdict
    assert "not comparable (different hardware)" in render_markdown(report)


def test_contended_or_too_small_timings_never_gate_latency(tmp_path: Path, models) -> None:
    full = models["full"]
    base = write_store(tmp_path / "b.db", [make_record(full, timing=fixed_timing(1.0))])
    # 9x slower, but timed next to a CPU hog: it measures the machine, so no regression verdict
    hog = write_store(tmp_path / "hog.db", [make_record(full, timing=fixed_timing(9.0, contended=True))])
    report = _report(base, hog, Policy(max_latency_ratio=1.5))
    (pair,) = report.pairs
    assert pair.latency is not None and pair.latency.status == "unavailable"
    assert "1 of 1 timing(s) contended" in pair.latency.note and "candidate side" in pair.latency.note
    assert pair.verdict == "ok" and report.exit_code == 0
    assert "— (contended)" in render_markdown(report) and "1 of 1 timing(s) contended" in render_markdown(report)
    # p99 of 30 samples is withheld: a p99 gate has nothing to compare
    (p99,) = _report(base, base, Policy(max_latency_ratio=1.5, latency_at="p99")).pairs
    assert p99.latency is not None and p99.latency.status == "unavailable"
    assert "p99 withheld (p99 needs >= 100 samples, this timing has 30)" in p99.latency.note


def test_latency_regression_needs_the_same_hardware_the_ratio_and_more_than_noise(
    tmp_path: Path, models
) -> None:
    full = models["full"]
    base = write_store(tmp_path / "b.db", [make_record(full, timing=fixed_timing(1.0, spread=0.05))])
    cases = {"slow": (2.0, "regression"), "noise": (1.04, "within_noise"), "fast": (0.5, "faster")}
    for name, (p50, status) in cases.items():
        cand = write_store(
            tmp_path / f"{name}.db", [make_record(full, timing=fixed_timing(p50, spread=0.05))]
        )
        (pair,) = _report(base, cand, Policy(max_latency_ratio=1.5)).pairs
        assert pair.latency is not None and pair.latency.status == status
        assert pair.latency.noise_ms == pytest.approx(0.05 * max(1.0, p50))
        assert (pair.verdict == "regression") == (status == "regression")
    # without a ratio limit, latency is reported but never fails the check
    cand = tmp_path / "slow.db"
    (pair,) = _report(base, cand).pairs
    assert pair.latency is not None and pair.latency.status == "slower" and pair.verdict == "ok"


def test_real_timings_from_this_machine_compare_within_its_fingerprint(tmp_path: Path, models) -> None:
    from harness.timing import hardware_info

    full = models["full"]
    base_timing, cand_timing = measured_timing(full), measured_timing(full)
    base = write_store(tmp_path / "b.db", [make_record(full, timing=base_timing)])
    cand = write_store(tmp_path / "c.db", [make_record(full, timing=cand_timing)])
    (pair,) = _report(base, cand).pairs
    assert pair.latency is not None
    if base_timing.contended or cand_timing.contended:  # a shared machine: the guard keeps them out
        assert pair.latency.status == "unavailable" and "contended" in pair.latency.note
        return
    assert pair.latency.hardware == hardware_info()["fingerprint"]
    assert pair.latency.status in (
        "within_noise",
        "slower",
        "faster",
    )  # measured: which one is up to the machine
    assert pair.latency.noise_ms is not None and pair.latency.noise_ms > 0


def test_without_per_example_predictions_it_says_so_and_falls_back_to_ci_overlap(
    tmp_path: Path, models
) -> None:
    full, damaged = models["full"], _same_config(models["damaged"], models["full"])
    base = write_store(tmp_path / "b.db", [make_record(full, with_predictions=False)])
    bad = write_store(tmp_path / "c.db", [make_record(damaged, with_predictions=False)])
    (pair,) = _report(base, bad).pairs
    f1 = pair.metric("macro_f1")
    assert f1 is not None and not f1.paired and f1.p_value is None
    assert f1.test == "CI overlap (no per-example predictions; not a paired test)"
    assert any("no paired test" in n for n in pair.notes)
    assert pair.verdict == "regression"  # the 95% CIs (from the stored bootstrap) do not overlap
    assert "CIs disjoint" in render_markdown(_report(base, bad))


def test_failed_or_missing_required_candidate_runs_fail_the_check(tmp_path: Path, models) -> None:
    full = models["full"]
    base = write_store(tmp_path / "b.db", [make_record(full)])
    failed = write_store(tmp_path / "f.db", [failed_record("logreg", "RuntimeError: out of memory")])
    (pair,) = _report(base, failed).pairs
    assert pair.verdict == "failed" and "out of memory" in pair.reasons[0]
    other = write_store(tmp_path / "o.db", [make_record(dataclasses.replace(full, name="other"))])
    report = _report(base, other)
    assert {p.model: p.verdict for p in report.pairs} == {"logreg": "missing", "other": "new"}
    assert report.exit_code == 1  # nothing was compared: a gate must not pass on nothing
    assert any(p.startswith("Nothing comparable") and "logreg" in p and "other" in p for p in report.problems)
    assert _report(base, other, Policy(allow_nothing_comparable=True)).exit_code == 0
    strict = _report(base, other, Policy(required_models=("logreg",)))
    assert strict.exit_code == 1
    assert any("Required model 'logreg'" in p for p in strict.problems)


def test_names_that_differ_only_in_unicode_composition_are_explained(tmp_path: Path, models) -> None:
    """A store whose model is "café" composed (U+00E9) against one with it decomposed (e + U+0301): exact
    matching lists it as missing and new, which read as nonsense since both print alike; the lines say why."""
    import unicodedata

    composed, decomposed = (unicodedata.normalize(form, "café") for form in ("NFC", "NFD"))
    base = write_store(tmp_path / "b.db", [make_record(dataclasses.replace(models["full"], name=composed))])
    cand = write_store(tmp_path / "c.db", [make_record(dataclasses.replace(models["full"], name=decomposed))])
    report = _report(base, cand)
    assert {p.model: p.verdict for p in report.pairs} == {composed: "missing", decomposed: "new"}
    for pair in report.pairs:
        assert "spelled with other Unicode code points (model 'café': baseline U+0063 U+0061 U+0066 U+00E9, " \
            "candidate U+0063 U+0061 U+0066 U+0065 U+0301)" in pair.reasons[-1], pair.reasons
    assert "differ between the sides only in Unicode composition" in report.problems[0]
    assert "one composed and one decomposed" in render_markdown(report)


def test_nothing_tested_is_not_reported_as_nothing_finished_on_both_sides(tmp_path: Path, models) -> None:
    """Two seeds a side and no predictions: no paired test and no single CI, so the one pair is untested. The
    report must not say that no pair has a finished run on both sides while listing it on both."""
    s0, s1 = models["seed0"], _same_config(models["seed1"], models["seed0"])
    runs = [make_record(s0, with_predictions=False), make_record(s1, with_predictions=False)]
    base, cand = write_store(tmp_path / "b.db", runs), write_store(tmp_path / "c.db", runs)
    report = _report(base, cand)
    assert [p.verdict for p in report.pairs] == ["untested"] and report.exit_code == 1
    (problem,) = report.problems
    assert problem.startswith("Nothing tested: 1 (model, task, protocol) have a finished run on both sides")
    assert "logreg / digits-fixture / linear_probe" in problem and "no (model, task, protocol) has" not in problem


@pytest.mark.parametrize("with_predictions", [True, False])
def test_a_metric_whose_definition_changed_is_recomputed_or_not_compared(tmp_path: Path, models, with_predictions: bool) -> None:
    """The task's `topk` is top-2 accuracy in the baseline and top-3 in the candidate. Without predictions to
    recompute it, the stored top-2 and top-3 values were compared as one metric and decided the verdict."""
    full = models["full"]

    def store(path: Path, k: int) -> Path:
        metrics = task_metrics((MetricRef("top_k_accuracy", {"k": k}, "topk"), "accuracy"), "topk")
        return write_store(path, [make_record(full, metrics=metrics, with_predictions=with_predictions)], metrics=metrics)

    (pair,) = _report(store(tmp_path / "b.db", 2), store(tmp_path / "c.db", 3)).pairs
    changed = 'topk: its definition changed (top_k_accuracy {"k": 2} -> top_k_accuracy {"k": 3})'
    if with_predictions:  # both sides recomputed with the candidate's definition: a fair comparison, said so
        assert pair.verdict == "ok" and pair.metrics[0].paired and pair.metrics[0].diff == 0
        assert any(n.startswith(changed + "; both sides recomputed") for n in pair.notes)
    else:
        assert pair.verdict == "not_comparable"
        assert pair.reasons == (
            'Not comparable: the definition of the gated metric topk changed (top_k_accuracy {"k": 2} -> '
            'top_k_accuracy {"k": 3}), and it cannot be recomputed on both sides from per-example predictions.',
        )
        assert any(n.startswith(changed + " and it is not recomputed here") for n in pair.notes)
        assert pair.metrics[0].test == "none"
        assert _report(store(tmp_path / "b2.db", 2), store(tmp_path / "c2.db", 2)).pairs[0].verdict != "not_comparable"


def test_a_gate_metric_undefined_on_the_test_set_is_untested_not_a_pass(tmp_path: Path, models) -> None:
    """MCC on a test set of one class is undefined on both sides: the gate compared NaN with NaN, counted it as
    a paired bootstrap test, showed "[+nan, +nan]" and passed (exit 0)."""
    metrics = task_metrics(("accuracy", "mcc"), "mcc")
    run = one_class_record(make_record(models["full"], metrics=metrics), metrics)
    base = write_store(tmp_path / "b.db", [run], metrics)
    cand = write_store(tmp_path / "c.db", [run], metrics)
    report = _report(base, cand)
    (pair,) = report.pairs
    gate = pair.metric("mcc")
    assert gate is not None and gate.test == "none" and gate.ci_low is None and gate.p_value is None
    assert pair.verdict == "untested" and report.exit_code == 1
    assert "mcc is undefined on both sides" in pair.reasons[0]
    assert "nan" not in render_markdown(report).lower()


COST_METRIC = Path(__file__).resolve().parent.parent / "docs" / "examples" / "cost_metric.py"


@pytest.mark.parametrize("seeds", [1, 2])
def test_a_plugin_main_metric_without_its_plugin_is_an_error_naming_it(tmp_path: Path, models, seeds: int) -> None:
    cost = [[0 if i == j else 1 for j in range(10)] for i in range(10)]
    metrics = discover_metrics([COST_METRIC]).resolve(
        ("accuracy", MetricRef("cost_weighted_error", {"cost": cost})), "cost_weighted_error", len(LABELS), where="t"
    )
    s0, s1 = models["seed0"], _same_config(models["seed1"], models["seed0"])
    runs = [make_record(m, metrics=metrics) for m in [s0, s1][:seeds]]
    base = write_store(tmp_path / "b.db", runs, metrics=metrics)
    cand = write_store(tmp_path / "c.db", runs, metrics=metrics)
    runner, app = CliRunner(), _cli()
    args = ["compare", "--baseline", str(base), "--candidate", str(cand)]
    without = runner.invoke(app, args)
    assert without.exit_code == 2, without.output
    text = " ".join(without.output.split())
    assert 'Cannot gate on the main metric "cost_weighted_error" of task digits-fixture' in text
    assert "pass --plugin FILE" in text and "Nothing comparable" not in text and "Traceback" not in text
    named = runner.invoke(app, [*args, "--metric", "cost_weighted_error"])
    assert named.exit_code == 2 and 'Cannot gate on --metric "cost_weighted_error"' in " ".join(named.output.split())
    with_plugin = runner.invoke(app, [*args, "--plugin", str(COST_METRIC), "--format", "json"])
    assert with_plugin.exit_code == 0, with_plugin.output
    (pair,) = json.loads(with_plugin.output)["pairs"]
    assert pair["verdict"] == "ok" and pair["metrics"][0]["metric"] == "cost_weighted_error" and pair["metrics"][0]["paired"]
    # gating on a built-in metric needs no plugin; the plugin metric beside it is shown from stored values
    builtin = runner.invoke(app, [*args, "--metric", "accuracy", "--format", "json"])
    assert builtin.exit_code == 0, builtin.output
    assert any("cost_weighted_error is defined by a plugin" in n for n in json.loads(builtin.output)["pairs"][0]["notes"])


def test_policy_file_flags_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("metric: accuracy\nmax_drop: 0.01\nalpha: 0.01\nrequired_models: [logreg]\n")
    policy = load_policy(path, {"alpha": 0.1, "max_drop": None})
    assert (policy.metric, policy.max_drop, policy.required_models) == ("accuracy", 0.01, ("logreg",))
    assert policy.alpha == 0.1  # the flag overrides the file
    path.write_text("max_dorp: 0.01\n")
    with pytest.raises(ConfigError, match=r'unknown key \'max_dorp\'\. Did you mean "max_drop"\?'):
        load_policy(path)
    path.write_text("alpha: 2\n")
    with pytest.raises(ConfigError, match="key 'alpha' must be between 0 and 1"):
        load_policy(path)
    path.write_text("metric: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        load_policy(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(tmp_path / "missing.yaml")


def test_max_drop_tolerates_a_small_significant_drop(dbs: dict[str, Path]) -> None:
    report = _report(dbs["base"], dbs["damaged"], Policy(max_drop=0.5))
    assert report.pairs[0].verdict == "ok" and "Within the allowed drop" in report.pairs[0].reasons[0]


def _worse_by(model: TrainedModel, n: int, name: str) -> TrainedModel:
    """`model` getting `n` more test examples wrong (its first n correct ones), under another name; class scores
    dropped on both sides so they cannot disagree with the predictions."""
    from result_fixtures import digits

    y = digits().y_test
    preds = model.preds.copy()
    flip = np.flatnonzero(preds == y)[:n]
    preds[flip] = (y[flip] + 1) % 10
    return dataclasses.replace(model, name=name, preds=preds, class_scores=None, score_kind=None)


@pytest.fixture(scope="module")
def marginal(tmp_path_factory: pytest.TempPathFactory, models: dict[str, TrainedModel]) -> dict[str, Path]:
    """Ten pairs whose candidate gets 6 more test examples wrong and none right (McNemar exact, n01=0, n10=6:
    p = 2 * 0.5**6 = 0.03125, under alpha 0.05 alone), and the same plus one pair 60 examples worse."""
    tmp = tmp_path_factory.mktemp("marginal")
    full = dataclasses.replace(models["full"], class_scores=None, score_kind=None)
    names = [f"m{i:02d}" for i in range(10)]
    base = [make_record(dataclasses.replace(full, name=n)) for n in names]
    cand = [make_record(_worse_by(full, 6, n)) for n in names]
    return {
        "base": write_store(tmp / "base.db", base),
        "cand": write_store(tmp / "cand.db", cand),
        "base+strong": write_store(tmp / "base-strong.db", [*base, make_record(dataclasses.replace(full, name="strong"))]),
        "cand+strong": write_store(tmp / "cand-strong.db", [*cand, make_record(_worse_by(full, 60, "strong"))]),
    }


def test_many_marginal_drops_do_not_fail_after_the_holm_correction(marginal: dict[str, Path]) -> None:
    holm_report = _report(marginal["base"], marginal["cand"], Policy(metric="accuracy"))
    none_report = _report(marginal["base"], marginal["cand"], Policy(metric="accuracy", correction="none"))
    assert len(holm_report.pairs) == len(none_report.pairs) == 10
    for pair in none_report.pairs:  # uncorrected: every pair alone is a significant drop
        gate = pair.gate
        assert gate is not None and gate.test == "McNemar exact (n01=0, n10=6)"
        assert gate.p_value == pytest.approx(0.03125) and gate.p_adjusted is None
        assert pair.verdict == "regression"
    assert none_report.exit_code == 1 and none_report.gate_tests == 10
    for pair in holm_report.pairs:  # Holm over 10 equal p-values: each adjusted to 10 x 0.03125
        gate = pair.gate
        assert gate is not None and gate.p_value == pytest.approx(0.03125)
        assert gate.p_adjusted == pytest.approx(0.3125) and not gate.significant
        assert pair.verdict == "ok"
        assert "not after the Holm correction across 10 gate tests (adjusted p=0.312)" in pair.reasons[0]
    assert holm_report.exit_code == 0 and holm_report.gate_tests == 10
    assert Policy().correction == "holm"  # the default


def test_one_strong_drop_still_fails_with_the_holm_correction(marginal: dict[str, Path]) -> None:
    report = _report(marginal["base+strong"], marginal["cand+strong"], Policy(metric="accuracy"))
    assert report.exit_code == 1 and report.gate_tests == 11
    verdicts = {p.model: p.verdict for p in report.pairs}
    assert verdicts.pop("strong") == "regression"
    assert set(verdicts.values()) == {"ok"}
    strong = next(p for p in report.pairs if p.model == "strong")
    gate = strong.gate
    assert gate is not None and gate.p_value is not None and gate.p_adjusted is not None
    assert gate.p_adjusted == pytest.approx(11 * gate.p_value) and gate.p_adjusted < 1e-10  # the smallest: x 11
    assert "Holm-adjusted across 11 gate tests" in strong.reasons[0]
    # the marginal ones: rank 2..11 of 11, all p equal -> 10 x 0.03125 (monotone step-down)
    assert {round(p.gate.p_adjusted, 6) for p in report.pairs if p.model != "strong"} == {0.3125}  # type: ignore[union-attr]


def test_holm_over_more_bootstrap_tests_than_the_resamples_can_resolve_is_refused(marginal: dict[str, Path]) -> None:
    """A bootstrap p is at least 1/(n_boot + 1): Holm over 10 of them at n_boot 100 adjusts even the largest drop
    to >= 10/101 > 0.05, so the check could never fail; that is an error, not a pass."""
    with pytest.raises(HarnessError) as err:
        _report(marginal["base"], marginal["cand"], Policy(n_boot=100))  # gate: macro_f1, paired bootstrap
    text = str(err.value)
    assert "The Holm correction cannot flag a regression here: 10 of the 10 gate tests are paired bootstrap" in text
    assert "at least 10/101 = 0.099" in text and "--n-boot 1000" in text and "at least 200 makes a failure possible" in text
    assert "--correction none" in text
    assert _report(marginal["base"], marginal["cand"], Policy(n_boot=200)).gate_tests == 10  # 10/201 < 0.05
    assert _report(marginal["base"], marginal["cand"], Policy(n_boot=100, correction="none")).exit_code == 1
    # McNemar has no floor: accuracy gates at n_boot 100 are fine
    assert _report(marginal["base"], marginal["cand"], Policy(metric="accuracy", n_boot=100)).exit_code == 0


def test_cli_correction_option_and_both_p_values_in_every_format(marginal: dict[str, Path], tmp_path: Path) -> None:
    runner, app = CliRunner(), _cli()
    args = ["compare", "--baseline", str(marginal["base"]), "--candidate", str(marginal["cand"]), "--metric", "accuracy"]
    as_json = runner.invoke(app, [*args, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["correction"] == {
        "method": "holm", "gate_tests": 10, "description": "Holm-Bonferroni across 10 gate tests",
    }  # fmt: skip
    assert data["policy"]["correction"] == "holm"
    gate = data["pairs"][0]["metrics"][0]
    assert gate["p_value"] == pytest.approx(0.03125) and gate["p_adjusted"] == pytest.approx(0.3125)
    assert gate["significant"] is False
    raw = runner.invoke(app, [*args, "--format", "json", "--correction", "none"])
    assert raw.exit_code == 1, raw.output
    raw_data = json.loads(raw.output)
    assert raw_data["correction"]["method"] == "none" and raw_data["pairs"][0]["metrics"][0]["p_adjusted"] is None
    out = tmp_path / "table.txt"  # written 200 columns wide: no cell wraps
    assert runner.invoke(app, [*args, "--out", str(out)]).exit_code == 0
    table = out.read_text()
    assert "Multiple-testing correction: Holm-Bonferroni across 10 gate tests" in table
    assert re.search(r"┃ p\s+┃ p Holm ┃", table) and re.search(r"│ 0\.0312 McNemar\s+│ 0\.312\s+│", table)
    md = runner.invoke(app, [*args, "--format", "markdown"]).output
    assert "| p | p Holm |" in md and "| 0.0312 McNemar | 0.312 |" in md
    assert "Multiple-testing correction: Holm-Bonferroni across 10 gate tests" in md
    junit = ET.fromstring(runner.invoke(app, [*args, "--format", "junit"]).output)
    props = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert props == {"alpha": "0.05", "correction": "holm", "gate_tests": "10"}
    policy = tmp_path / "policy.yaml"
    policy.write_text("correction: none\n")
    assert runner.invoke(app, [*args, "--policy", str(policy)]).exit_code == 1
    bad = runner.invoke(app, [*args, "--correction", "bonferroni"])
    assert bad.exit_code == 2
    assert '--correction must be one of holm, none, got "bonferroni"' in " ".join(bad.output.split())
    policy.write_text("correction: hlom\n")
    wrong = runner.invoke(app, [*args, "--policy", str(policy)])
    assert wrong.exit_code == 2 and "correction" in wrong.output and 'Did you mean "holm"' in " ".join(wrong.output.split())


def test_markdown_junit_and_json_outputs(dbs: dict[str, Path]) -> None:
    report = _report(dbs["base"], dbs["damaged"])
    md = render_markdown(report)
    assert md.startswith("### harness compare: ❌ FAIL")
    assert "| Task | Model | Protocol | macro_f1 base→cand | Δ [95% CI] | p |" in md
    assert "❌ regression" in md
    root = ET.fromstring(render_junit(report))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "1" and suite.get("failures") == "1"
    case = suite.find("testcase")
    assert case is not None
    assert (case.get("classname"), case.get("name")) == ("digits-fixture.linear_probe", "logreg")
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "regression"
    assert "macro_f1 dropped" in failure.get("message", "")
    data = json.loads(render_json(report))
    assert data["passed"] is False and data["pairs"][0]["verdict"] == "regression"


def _cli() -> typer.Typer:
    """The commands as harness.cli registers them: HarnessError -> message + exit 2."""
    from harness.cli import user_errors

    app = typer.Typer()
    app.command("compare")(user_errors(compare))
    app.command("export-baseline")(user_errors(export_baseline))
    return app


def test_cli_exit_codes_and_formats(dbs: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    app = _cli()
    bad = runner.invoke(app, ["compare", "--baseline", str(dbs["base"]), "--candidate", str(dbs["damaged"])])
    assert bad.exit_code == 1, bad.output
    assert "regression" in bad.output
    ok_args = [
        "compare",
        "--baseline",
        str(dbs["seed0"]),
        "--candidate",
        str(dbs["seed1"]),
        "--format",
        "markdown",
    ]
    ok = runner.invoke(app, ok_args)
    assert ok.exit_code == 0, ok.output
    assert "✅ PASS" in ok.output
    junit = tmp_path / "compare.xml"
    labelled = [
        "compare", "--db", str(dbs["labelled"]), "--baseline-label", "main", "--candidate-label", "pr-17",
        "--format", "junit", "--out", str(junit),
    ]  # fmt: skip
    assert runner.invoke(app, labelled).exit_code == 1
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "1"  # type: ignore[union-attr]

    baseline = tmp_path / "baseline.json"
    exported = runner.invoke(
        app, ["export-baseline", "--db", str(dbs["labelled"]), "--label", "main", "--out", str(baseline)]
    )
    assert exported.exit_code == 0, exported.output
    again = runner.invoke(app, ["compare", "--baseline", str(baseline), "--candidate", str(dbs["damaged"])])
    assert again.exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Say what to compare against"),
        (["--baseline", "{base}", "--candidate", "{base}"], "same result set"),
        (["--baseline", "{base}", "--format", "html"], '--format "html" is not one of'),
        (["--baseline", "{base}", "--latency-at", "p90"], "--latency-at must be one of"),
        (["--baseline", "{base}", "--metric", "mcx"], "is neither a metric the compared tasks declare nor a registered metric. Did you mean \"mcc\""),
        (["--baseline", "{dir}/nope.json"], "does not exist"),
    ],
)
def test_cli_usage_errors_exit_2_with_a_message(dbs: dict[str, Path], tmp_path: Path, args, message) -> None:
    values = [a.format(base=dbs["base"], dir=tmp_path) for a in args]
    result = CliRunner().invoke(_cli(), ["compare", "--candidate", str(dbs["damaged"]), *values])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())  # rich wraps long lines
    assert "Traceback" not in result.output


def test_a_corrupt_or_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 10)
    with pytest.raises(HarnessError, match="not a harness results database"):
        load_results(junk)
    empty = tmp_path / "other.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(HarnessError, match="not a harness results database"):
        load_results(empty)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"format": "something-else"}')
    with pytest.raises(HarnessError, match="not a harness baseline"):
        load_results(wrong)


RUNNER_SUITE = """
name: ci-smoke
tasks:
  - {name: digits, subsample: {train: 300, validation: 100, test: 300, seed: 0}}
models:
  - {name: pixels, family: pixels}
protocols:
  - {name: linear_probe, Cs: [0.1, 1.0]}
timing: {warmup: 1, batch1_iters: 5, throughput_batches: 1}
bootstrap: {n_boot: 100, seed: 0}
"""


def test_stores_written_by_the_real_runner(tmp_path: Path) -> None:
    """Baseline: raw digits pixels; candidate: the same model downsampled to 2x2 (a real regression)."""
    from harness.config import load_suite
    from harness.runner import run_suite
    from harness.store import Store

    base_suite, cand_suite = tmp_path / "base.yaml", tmp_path / "cand.yaml"
    base_suite.write_text(RUNNER_SUITE)
    damaged = "{name: pixels, family: pixels, options: {image_size: 2}}"
    cand_suite.write_text(RUNNER_SUITE.replace("{name: pixels, family: pixels}", damaged))
    db = tmp_path / "results.db"
    store = Store(db)
    try:
        assert run_suite(load_suite(base_suite), store, label="main").done == 1
        assert run_suite(load_suite(cand_suite), store, label="pr").done == 1
    finally:
        store.close()

    report = _report(db, db, base_sel="main", cand_sel="pr")
    (pair,) = report.pairs
    assert (pair.model, pair.task, pair.protocol, pair.verdict) == (
        "pixels",
        "digits",
        "linear_probe",
        "regression",
    )
    assert any("Model spec changed (options.image_size: null -> 2)" in n for n in pair.notes)
    f1 = pair.metric("macro_f1")
    assert f1 is not None and f1.n_examples == 300 and f1.ci_high is not None and f1.ci_high < 0
    assert (
        pair.latency is not None and pair.latency.status != "not_comparable"
    )  # one machine, one fingerprint

    baseline = tmp_path / "baseline.json"
    write_baseline(load_results(db, "main"), baseline)
    again = _report(baseline, db, cand_sel="pr")
    assert again.pairs[0].metrics == pair.metrics and again.exit_code == 1
