"""One schema engine, one error format, for every kind of YAML we read: suite, task file, model (family)
options, protocol options, task options and compare policy. Each case is a real file (or mapping) through the
public loader, and the whole message is compared, so a second engine or format would show up here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.compare.policy import load_policy
from harness.config import load_suite
from harness.data.yaml_task import YamlTask
from harness.errors import ConfigError
from harness.models import load_adapter
from harness.models.base import ModelSpec
from harness.registry import TaskRegistry

SUITE = "name: s\ntasks: [digits]\nmodels:\n  - {name: m, family: pixels}\nprotocols: [linear_probe]\n"
TASK = "name: t\nversion: '1'\nmodality: text\nlabels: [bad, good]\nsource: {type: csv, path: x.csv}\n"


def suite(tmp: Path, text: str) -> str:
    path = tmp / "suite.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    return str(err.value).replace(str(path), "FILE")


def task(tmp: Path, text: str) -> str:
    path = tmp / "task.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        YamlTask(path)
    return str(err.value).replace(str(path.resolve()), "FILE")


def policy(tmp: Path, text: str) -> str:
    path = tmp / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    return str(err.value).replace(str(path), "FILE")


def model_options(options: dict) -> str:
    with pytest.raises(ConfigError) as err:
        load_adapter(ModelSpec(name="m", family="pixels", options=options))
    return str(err.value)


def task_options(options: dict) -> str:
    with pytest.raises(ConfigError) as err:
        TaskRegistry.discover().get("digits", options)
    return str(err.value)


CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    "suite-literal": (
        lambda tmp: suite(tmp, SUITE.replace("family: pixels}", "family: pixels, precision: fp8}")),
        "FILE: key 'models[0].precision' must be one of 'fp32', 'bf16', got string 'fp8'. Did you mean \"fp32\"?",
    ),
    "suite-unknown-key": (
        lambda tmp: suite(tmp, SUITE + "timing: {warmpu: 1}\n"),
        "FILE: unknown key 'timing.warmpu'. Did you mean \"warmup\"? Allowed keys: warmup, min_samples, max_samples, "
        "target_rel_ci, budget_s, throughput_batches, remeasure_contended, enabled, batch1_iters.",
    ),
    "suite-family": (
        lambda tmp: suite(tmp, SUITE.replace("family: pixels", "family: pixel")),
        "Did you mean \"pixels\"?",
    ),
    "suite-range": (
        lambda tmp: suite(tmp, SUITE.replace("family: pixels}", "family: pixels, batch_size: 0}")),
        "FILE: key 'models[0].batch_size' must be a positive integer, got 0.",
    ),
    "protocol-options": (
        lambda tmp: suite(tmp, SUITE.replace("[linear_probe]", "[{name: p, protocol: linear_probe, Cs: [a]}]")),
        "FILE: key 'protocols[0].Cs[0]' must be a number, got string 'a'.",
    ),
    "task-options-in-suite": (
        lambda tmp: suite(tmp, SUITE.replace("[digits]", "[{name: digits, limit: 1.5}]")),
        "FILE: key 'tasks[0].limit' must be a positive whole number of test examples (e.g. 200) or a fraction "
        "between 0 and 1 (e.g. 0.1 or 10%), got number 1.5.",
    ),
    "task-file-type": (
        lambda tmp: task(tmp, TASK.replace("version: '1'", "version: 1.0")),
        "FILE: key 'version' must be a string, got number 1.0. Quote it: \"1.0\".",
    ),
    "task-file-nested-unknown": (
        lambda tmp: task(tmp, TASK + "split: {test_sise: 0.2}\n"),
        "FILE: unknown key 'split.test_sise'. Did you mean \"test_size\"? Allowed keys: validation_size, test_size, seed, near_duplicate_threshold.",
    ),
    "task-file-spec-check": (
        lambda tmp: task(tmp, TASK + "lm_prompt: 'Say:'\n"),
        "FILE: key 'lm_prompt' 'Say:' has no {text} placeholder: the input text must appear in the prompt.",
    ),
    "policy": (
        lambda tmp: policy(tmp, "latency_at: p90\n"),
        "FILE: key 'latency_at' must be one of 'p50', 'p95', 'p99', got string 'p90'. Did you mean \"p99\"?",
    ),
    "policy-range": (
        lambda tmp: policy(tmp, "alpha: 1.5\n"),
        "FILE: key 'alpha' must be between 0 and 1 (exclusive), got 1.5.",
    ),
    "model-options": (
        lambda tmp: model_options({"image_size": "big"}),
        "Model \"m\" (pixels): key 'options.image_size' must be an integer, got string 'big'.",
    ),
    "task-options": (
        lambda tmp: task_options({"subsample": {"train": 0}}),
        "Task 'digits': key 'subsample.train' must be at least 1, got 0.",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_yaml_kind_reports_in_the_one_format(tmp_path: Path, name: str) -> None:
    make, expected = CASES[name]
    message = make(tmp_path)
    assert "\n" not in message
    if expected.startswith(("FILE", "Model", "Task")):
        assert message == expected
    else:
        assert expected in message


def test_names_with_markup_print_as_written(tmp_path: Path) -> None:
    """Messages are plain text; the CLI escapes the paragraph for rich, so a name like m[/]x prints as given."""
    from typer.testing import CliRunner

    from harness.cli import app

    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.replace("{name: m, family: pixels}", '{name: "m[/]x", family: onnx, source: "/nowhere/[red]x.onnx"}'))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    said = " ".join(result.output.split())
    assert "key 'models[0].source': Model source \"/nowhere/[red]x.onnx\"" in said, said
    # a name: --only-model's close match prints the model's name as given
    ok = tmp_path / "ok.yaml"
    ok.write_text(SUITE.replace("name: m,", 'name: "m[/]x",'))
    result = CliRunner().invoke(app, ["run", str(ok), "--only-model", "m[/]y", "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2 and 'Did you mean "m[/]x"' in " ".join(result.output.split()), result.output
    assert not (tmp_path / "h.db").exists()
