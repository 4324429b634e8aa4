from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_suite
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
name: t
tasks: [bbc-news]
models:
  - {name: m, family: tfidf}
protocols:
  - linear_probe
  - {name: probe-4shot, protocol: linear_probe, k_shot: 4, repeats: 3}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "suite.yaml"
    p.write_text(text)
    return p


def test_shipped_suites_parse() -> None:
    for name in ("demo.yaml", "smoke.yaml"):
        suite = load_suite(ROOT / "suites" / name)
        assert suite.models and suite.tasks and suite.protocols


def test_protocol_variants_are_typed(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, GOOD))
    variant = suite.protocols[1]
    assert (variant.name, variant.protocol) == ("probe-4shot", "linear_probe")
    assert variant.config.k_shot == 4 and variant.config.repeats == 3
    assert suite.models[0].spec.trust_remote_code is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("family: tfidf", "family: tfidff"), ['models[0].family', 'Did you mean "tfidf"']),
        (GOOD.replace("k_shot: 4", "k_shto: 4"), ["unknown key 'protocols[1].k_shto'", 'Did you mean "k_shot"']),
        (GOOD.replace("repeats: 3", "repeats: three"), ["key 'protocols[1].repeats' must be an integer, got string 'three'"]),
        (GOOD.replace("- linear_probe\n", "- linear_prob\n"), ["key 'protocols[0]' must be one of", "got string 'linear_prob'", 'Did you mean "linear_probe"']),
        (GOOD.replace("name: t", "nmae: t"), ["unknown key 'nmae'", 'Did you mean "name"']),
        (GOOD.replace("tasks: [bbc-news]\n", ""), ["missing required key 'tasks'"]),
        (GOOD.replace("{name: m, family: tfidf}", "{name: m, family: tfidf, batch_size: 0}"), ["batch_size", "positive"]),
        ("name: [unclosed\n", ["not valid YAML", "line 2", "column 1"]),
        (GOOD.replace("k_shot: 4", "k_shot: 0"), ["key 'protocols[1].k_shot' must be >= 1"]),
    ],
)
def test_bad_suites_name_file_key_and_expectation(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_missing_suite_file_suggests_close_name(tmp_path: Path) -> None:
    _write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match=r'does not exist\. Did you mean "suite.yaml"'):
        load_suite(tmp_path / "suit.yaml")


def test_task_groups_are_checked_against_the_suite_tasks(tmp_path: Path) -> None:
    text = GOOD + "task_groups:\n  news: [bbc-news]\n"
    assert load_suite(_write(tmp_path, text)).task_groups == {"news": ("bbc-news",)}
    with pytest.raises(ConfigError, match=r"key 'task_groups.news': \"bbc-newz\" is not in the suite's tasks"):
        load_suite(_write(tmp_path, GOOD + "task_groups:\n  news: [bbc-newz]\n"))
    with pytest.raises(ConfigError, match=r"key 'task_groups' must be a mapping of names to lists of strings, got list"):
        load_suite(_write(tmp_path, GOOD + "task_groups: [bbc-news]\n"))


def test_a_name_written_as_an_integer_is_the_string_and_errors_say_integer(tmp_path: Path) -> None:
    text = GOOD.replace("name: probe-4shot", "name: 4").replace("{name: m, family: tfidf}", "{name: m, family: tfidf, protocols: [4]}")
    suite = load_suite(_write(tmp_path, text))
    assert suite.protocols[1].name == "4" and suite.models[0].protocols == ("4",)  # a reference to it still resolves
    with pytest.raises(ConfigError) as info:
        load_suite(_write(tmp_path, text.replace("protocols: [4]", "protocols: [5]")))
    assert "key 'models[0].protocols': 5 (an integer) is not in the suite's protocols" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_suite(_write(tmp_path, GOOD.replace("- linear_probe\n", "- 5\n")))
    assert "key 'protocols[0]' must be one of" in str(info.value) and "got integer 5." in str(info.value)
