"""Hostile input: every bad file, setting, store or plugin is a clear one-paragraph error (exit 2, or 1 where a
job legitimately fails), never a traceback or a hang, and the results store is byte-identical afterwards.

One parametrised case per kind (CASES). The pristine store is real: the `digits` task and two `pixels` models
whose names, protocol variant, suite name and label hold rich markup (``[/]``, ``[bold]``).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from harness.cli import app

EVIL_MODEL, EVIL_MODEL_2, EVIL_PROTOCOL, EVIL_LABEL = "pix[/]els", "[bold]b", "probe[/]x", "l[/]"
TIMING = "timing: {warmup: 1, batch1_iters: 3, throughput_batches: 1}\nbootstrap: {n_boot: 100, seed: 0}\n"
DIGITS = "  - name: digits\n    subsample: {train: 200, validation: 60, test: 100, seed: 0}\n"
EVIL_SUITE = (
    'name: "evil[/]suite"\ntasks:\n' + DIGITS + "models:\n"
    f'  - {{name: "{EVIL_MODEL}", family: pixels}}\n'
    f'  - {{name: "{EVIL_MODEL_2}", family: pixels, batch_size: 16}}\n'
    f'protocols:\n  - {{name: "{EVIL_PROTOCOL}", protocol: linear_probe}}\n' + TIMING
)


def good_suite(**replace: str) -> str:
    """A valid one-job suite (digits x pixels x linear_probe); `replace` swaps whole top-level sections."""
    sections = {
        "name": "name: ok\n",
        "tasks": "tasks:\n" + DIGITS,
        "models": "models:\n  - {name: pixels, family: pixels}\n",
        "protocols": "protocols: [linear_probe]\n",
        "timing": "timing: {warmup: 1, batch1_iters: 3, throughput_batches: 1}\n",
        "bootstrap": "bootstrap: {n_boot: 100, seed: 0}\n",
    }
    sections.update(replace)
    return "".join(sections.values())


def checkpoint(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def store_state(db: Path) -> tuple[str, str]:
    """(hash of the file bytes, hash of the SQL dump), after folding any WAL into the file."""
    checkpoint(db)
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    dump = "\n".join(conn.iterdump())
    conn.close()
    return hashlib.sha256(db.read_bytes()).hexdigest(), hashlib.sha256(dump.encode()).hexdigest()


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pristine")
    suite = folder / "evil.yaml"
    suite.write_text(EVIL_SUITE)
    db = folder / "store.db"
    result = invoke(["run", str(suite), "--db", str(db), "--quiet", "--label", EVIL_LABEL])
    assert result.exit_code == 0, result.output
    checkpoint(db)
    return db


@dataclass
class Env:
    tmp: Path
    db: Path  # a copy of the pristine store

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path


@pytest.fixture
def env(tmp_path: Path, pristine: Path) -> Env:
    db = tmp_path / "store.db"
    shutil.copyfile(pristine, db)
    return Env(tmp_path, db)


@dataclass(frozen=True)
class Case:
    make: Callable[[Env], list[str]]  # CLI arguments (writes its input files into env.tmp)
    needles: tuple[str, ...]  # each must appear in the error paragraph
    code: int = 2


def assert_clean_failure(result: Result, code: int, needles: tuple[str, ...]) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr  # one paragraph
        text = lines[0]
    else:
        text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


# ---- YAML ---------------------------------------------------------------------------------------------

LAUGHS = "lol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
DEEP = "a: " + "[" * 20_000 + "]" * 20_000 + "\n"
NOT_UTF8 = b"name: caf" + b"\xe9\n" + b"models: []\n"


def suite_file(content: str | bytes, name: str = "suite.yaml") -> Callable[[Env], list[str]]:
    return lambda env: ["run", str(env.write(name, content)), "--db", str(env.db)]


def task_file(content: str | bytes) -> Callable[[Env], list[str]]:
    return lambda env: ["tasks", "--plugin", str(env.write("task.yaml", content))]


def policy_file(content: str | bytes) -> Callable[[Env], list[str]]:
    def make(env: Env) -> list[str]:
        other = env.tmp / "other.db"
        shutil.copyfile(env.db, other)
        policy = env.write("policy.yaml", content)
        return ["compare", "--baseline", str(env.db), "--candidate", str(other), "--policy", str(policy)]

    return make


CASES: dict[str, Case] = {
    "yaml-alias-bomb-suite": Case(
        suite_file(LAUGHS), ("suite.yaml", "aliases expand to more than", "billion laughs")
    ),
    "yaml-alias-bomb-task": Case(task_file(LAUGHS), ("task.yaml", "aliases expand to more than")),
    "yaml-alias-bomb-policy": Case(policy_file(LAUGHS), ("policy.yaml", "aliases expand to more than")),
    "yaml-recursive-alias": Case(
        suite_file("a: &x [1, *x]\n"), ("suite.yaml", "line 1", "refers to the node")
    ),
    "yaml-duplicate-key-suite": Case(
        suite_file(good_suite() + "models: [{name: other, family: pixels}]\n"),
        ("suite.yaml", "line 10", "duplicate key 'models'", "first given at line 5"),
    ),
    "yaml-duplicate-key-nested": Case(
        suite_file(good_suite(models="models:\n  - {name: a, family: pixels, name: b}\n")),
        ("suite.yaml", "line 6", "duplicate key 'name'"),
    ),
    "yaml-duplicate-key-task": Case(
        task_file("name: t\nversion: '1'\nname: u\n"), ("task.yaml", "line 3", "'name'")
    ),
    "yaml-duplicate-key-policy": Case(policy_file("alpha: 0.05\nalpha: 0.5\n"), ("policy.yaml", "'alpha'")),
    "yaml-not-utf8-suite": Case(
        suite_file(NOT_UTF8), ("suite.yaml", "not UTF-8", "byte 0xe9 at byte offset 9", "line 1")
    ),
    "yaml-not-utf8-task": Case(task_file(NOT_UTF8), ("task.yaml", "byte offset 9")),
    "yaml-not-utf8-policy": Case(policy_file(NOT_UTF8), ("policy.yaml", "byte offset 9")),
    "yaml-deep-flow-suite": Case(suite_file(DEEP), ("suite.yaml", "nested deeper than 64 levels")),
    "yaml-deep-block-task": Case(
        task_file("".join("  " * i + "k:\n" for i in range(500))), ("task.yaml", "nested deeper than 64")
    ),
    "yaml-too-large": Case(suite_file("# pad\n" * 1_500_000), ("suite.yaml", "bytes; the limit is")),
    "yaml-python-tag": Case(
        suite_file("name: !!python/object/apply:os.system ['true']\n"),
        ("suite.yaml", "line 1", "could not determine a constructor"),
    ),
    "yaml-syntax-error": Case(suite_file("name: [a, b\n"), ("suite.yaml", "not valid YAML at line 2")),
    "yaml-top-level-list": Case(
        suite_file("- a\n- b\n"), ("suite.yaml", "expected a mapping at the top level")
    ),
    "yaml-empty-file": Case(suite_file(""), ("suite.yaml", "expected a mapping at the top level")),
    "yaml-suite-is-directory": Case(
        lambda env: ["run", str(env.tmp), "--db", str(env.db)], ("does not exist",)
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_a_clear_error_and_the_store_is_untouched(name: str, env: Env) -> None:
    case = CASES[name]
    before = store_state(env.db)
    result = invoke(case.make(env))
    assert_clean_failure(result, case.code, case.needles)
    assert store_state(env.db) == before


def test_catalogue_is_broad() -> None:
    assert len(CASES) >= 19


# ---- YAML 1.1 words mean what was written ----------------------------------------------------------------


def test_documented_words_are_strings_and_booleans_take_yes_no(tmp_path: Path) -> None:
    from harness.config import load_suite
    from harness.data.yaml_task import load_yaml_task_config

    task = tmp_path / "t.yaml"
    task.write_text(
        "name: t\nversion: 1\nmodality: text\nlabels: [no, yes, off]\ndedupe: off\n"
        "source: {type: csv, path: d.csv}\n"
    )
    config = load_yaml_task_config(task)
    assert config.dedupe == "off"
    assert config.labels == ("no", "yes", "off")  # YAML 1.1 would have read [False, True, False]
    suite = tmp_path / "s.yaml"
    suite.write_text(good_suite(models="models:\n  - {name: m, family: pixels, normalize: yes}\n"))
    assert load_suite(suite).models[0].spec.normalize is True
    suite.write_text(good_suite(models="models:\n  - {name: m, family: pixels, normalize: off}\n"))
    assert load_suite(suite).models[0].spec.normalize is False
    suite.write_text(good_suite(models="models:\n  - {name: m, family: pixels, normalize: maybe}\n"))
    with pytest.raises(Exception, match=r"normalize: expected bool"):
        load_suite(suite)


def test_yaml_12_scalars() -> None:
    from harness.yaml_io import parse_yaml

    data = parse_yaml("a: 010\nb: 1e-3\nc: 1:30\nd: 2024-01-01\ne: ~\nf: 0x10\ng: True\nh: .inf\n", "x")
    assert data == {
        "a": 10,
        "b": 0.001,
        "c": "1:30",
        "d": "2024-01-01",
        "e": None,
        "f": 16,
        "g": True,
        "h": float("inf"),
    }


def test_merge_keys_still_override() -> None:
    from harness.yaml_io import parse_yaml

    data = parse_yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 5\n", "x")
    assert data["d"] == {"x": 5, "y": 2}


# ---- everything user-named is printed verbatim (rich markup escaped) ------------------------------------


def _compare_labels(env: Env) -> list[str]:
    other = env.tmp / "other.db"
    shutil.copyfile(env.db, other)
    return ["compare", "--baseline", str(env.db), "--candidate", str(other)]


def _models_of_suite(env: Env) -> list[str]:
    return ["models", str(env.write("evil.yaml", EVIL_SUITE)), "--db", str(env.db)]


def _tasks_with_markup(env: Env) -> list[str]:
    task = env.write(
        "tasks/t.yaml",
        "name: t\nversion: '1'\nmodality: text\nlabels: [a, b]\nlicense: '[/]odd'\n"
        "source: {type: csv, path: d.csv}\n",
    )
    return ["tasks", "--plugin", str(task)]


PRINTERS: dict[str, tuple[Callable[[Env], list[str]], tuple[str, ...]]] = {
    "show": (lambda env: ["show", "--db", str(env.db)], (EVIL_MODEL, EVIL_MODEL_2, EVIL_PROTOCOL)),
    "show-one-model": (lambda env: ["show", "--db", str(env.db), "--model", EVIL_MODEL], (EVIL_MODEL,)),
    "pick": (lambda env: ["pick", "--task", "digits", "--db", str(env.db)], (EVIL_MODEL, EVIL_MODEL_2)),
    "compare": (_compare_labels, (EVIL_MODEL, EVIL_MODEL_2)),
    "site": (lambda env: ["site", "--db", str(env.db), "--out", str(env.tmp / "site[/]x")], ("site[/]x",)),
    "models": (_models_of_suite, (EVIL_MODEL, EVIL_MODEL_2)),
    "tasks": (_tasks_with_markup, ("[/]odd",)),
}


@pytest.mark.parametrize("name", list(PRINTERS))
def test_user_named_text_is_printed_verbatim(name: str, env: Env) -> None:
    make, expected = PRINTERS[name]
    result = invoke(make(env))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), result.output
    for text in expected:
        assert text in result.output


def test_run_prints_markup_names_verbatim(tmp_path: Path) -> None:
    suite = tmp_path / "evil.yaml"
    suite.write_text(EVIL_SUITE.replace("evil[/]suite", "evil[/]suite2"))
    result = invoke(["run", str(suite), "--db", str(tmp_path / "r[/].db")])
    assert result.exit_code == 0, result.output
    assert EVIL_MODEL in result.output and EVIL_PROTOCOL in result.output and "r[/].db" in result.output
