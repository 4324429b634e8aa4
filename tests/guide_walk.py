"""Walk a guide in docs/ the way a reader would: write its files, run its commands, in the order given.

A guide marks what the reader creates with a titled code block and what the reader runs with a bash block:

    ```python title="my_protocols/nearest_centroid.py"      -> written to <work dir>/my_protocols/...
    ```bash                                                 -> each line run, in order

Other code blocks (no title) are illustrations and are not run. Commands the walk knows:
- `harness ARGS`: the CLI, in this process (typer's CliRunner), in the work dir; it must exit 0;
- `pip install PATH`: a real pip install of the package at PATH (built with setuptools, no network), into
  a folder put on sys.path for the rest of the test: entry points are found as in any environment;
- `python FILE [ARGS]`: FILE run with this interpreter; a FILE the work dir lacks is taken from the
  harness checkout (guides say "from a harness checkout" for docs/examples/... scripts).
Anything else fails the test: a guide must not tell readers to run what its test never ran.
"""

from __future__ import annotations

import functools
import importlib
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import harness.protocols as protocols
from harness.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
TITLE = re.compile(r'title="([^"]+)"')
ENV = {"NO_COLOR": "1"}


@dataclass(frozen=True)
class Step:
    kind: str  # "file" or "command"
    text: str  # file content, or the command line
    path: str = ""  # file path relative to the work dir


def steps(guide: Path) -> list[Step]:
    found: list[Step] = []
    for match in FENCE.finditer(guide.read_text(encoding="utf-8")):
        lang, info, body = match.groups()
        title = TITLE.search(info)
        if title:
            found.append(Step("file", body, title.group(1)))
        elif lang in ("bash", "sh"):
            for line in body.replace("\\\n", " ").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    found.append(Step("command", line.split(" #")[0].strip()))
    return found


@dataclass
class Walk:
    work: Path
    outputs: dict[str, str]  # command line -> its stdout

    def output(self, prefix: str) -> str:
        """The output of the last command that starts with `prefix`."""
        matches = [out for cmd, out in self.outputs.items() if cmd.startswith(prefix)]
        assert matches, f"the guide runs no command starting with {prefix!r}; ran: {list(self.outputs)}"
        return matches[-1]


def _fresh_plugin_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables read once per process from entry points, read anew for this test only: the originals,
    which never saw the test's packages, are put back at teardown."""
    monkeypatch.setattr(protocols, "_table", functools.cache(protocols._table.__wrapped__))
    families = importlib.import_module("harness.models.families")  # the module (harness.models.families is also a function)
    monkeypatch.setattr(families, "_table", functools.cache(families._table.__wrapped__))


def walk(guide_name: str, work: Path, monkeypatch: pytest.MonkeyPatch) -> Walk:
    guide = DOCS / guide_name
    plan = steps(guide)
    assert any(s.kind == "command" for s in plan), f"{guide} has no ```bash block to run"
    monkeypatch.chdir(work)
    site = work / ".site-packages"
    result = Walk(work, {})
    for step in plan:
        if step.kind == "file":
            target = work / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.text, encoding="utf-8")
            continue
        args = shlex.split(step.text)
        where = f"{guide_name}: `{step.text}`"
        if args[0] == "harness":
            run = CliRunner().invoke(app, args[1:], env=ENV)
            assert run.exit_code == 0, f"{where} exited {run.exit_code}:\n{run.output}"
            result.outputs[step.text] = run.stdout
        elif args[:2] == ["pip", "install"]:
            cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                   "--no-build-isolation", "--target", str(site), *args[2:]]  # fmt: skip
            done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
            assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
            monkeypatch.syspath_prepend(str(site))
            importlib.invalidate_caches()
            _fresh_plugin_tables(monkeypatch)  # as a new process would: read the entry points again
            result.outputs[step.text] = done.stdout
        elif args[0] == "python":
            script = args[1] if (work / args[1]).exists() else str(ROOT / args[1])
            done = subprocess.run([sys.executable, script, *args[2:]], cwd=work, capture_output=True, text=True)
            assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
            result.outputs[step.text] = done.stdout
        else:
            pytest.fail(f"{where}: the walk-through does not know how to run this command")
    return result
