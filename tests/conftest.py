"""Shared fixtures. Collection of zero tests is an error, not a silent pass.

Golden files (tests/golden/): `golden(name, text)` compares command output line by line with
tests/golden/<name> and fails with a unified diff. After an intended change of output, regenerate them with
`python -m pytest tests/test_golden.py --update-golden` and review `git diff tests/golden` before committing.
"""

from __future__ import annotations

import difflib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Tests send Ctrl-C (SIGINT) to the processes they start (harness serve, a site build's workers). A test run
# started in the background of a non-interactive shell (`nohup ... &`, some CI runners) has SIGINT ignored,
# which every child inherits and Python honours: those processes would never stop. Take it back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/* from the current output instead of comparing against them",
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.items and not session.config.getoption("collectonly"):
        raise pytest.UsageError("no tests were collected: refusing to report success for an empty test run")


def _lines(text: str) -> list[str]:
    # Trailing spaces (rich pads table cells) are not output anyone reads, and editors strip them.
    return [line.rstrip() for line in text.splitlines()]


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """check(name, text): text must equal tests/golden/<name> line by line (--update-golden rewrites it)."""
    update = bool(request.config.getoption("--update-golden"))

    def check(name: str, text: str) -> None:
        path = GOLDEN_DIR / name
        actual = _lines(text)
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(actual) + "\n", encoding="utf-8")
            return
        if not path.is_file():
            pytest.fail(f"golden file {path} is missing; create it with: python -m pytest {request.node.nodeid} --update-golden")
        expected = _lines(path.read_text(encoding="utf-8"))
        if actual != expected:
            first = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b), min(len(expected), len(actual)))
            diff = "\n".join(
                difflib.unified_diff(expected, actual, f"tests/golden/{name} (expected)", "actual output", n=2, lineterm="")
            )
            pytest.fail(
                f"output differs from tests/golden/{name} from line {first + 1} on "
                f"({len(expected)} lines expected, {len(actual)} produced):\n{diff}\n"
                "If the change is intended, regenerate with `python -m pytest tests/test_golden.py --update-golden` "
                "and review `git diff tests/golden`.",
                pytrace=False,
            )

    return check
