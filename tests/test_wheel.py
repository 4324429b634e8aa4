"""The wheel: tasks/ and site_templates/ ship inside the harness package, and an installed wheel runs.

The slow test builds the wheel from the checkout's files, installs it with --no-deps into a fresh venv whose
dependencies come from this environment (a .pth file naming this environment's site-packages; .pth files
there, such as an editable install's finder, are not run), and runs `harness tasks` and `harness site` from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from test_site import make_digits_store  # tests/ is on sys.path, as for result_fixtures

from harness.sitegen import build_site

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_pyproject_lists_every_package_and_maps_the_top_level_folders() -> None:
    from setuptools import find_packages

    config = _pyproject_setuptools()
    mapped = config["package-dir"]
    assert mapped == {"harness.builtin_tasks": "tasks", "harness.site_templates": "site_templates"}
    expected = set(find_packages(str(ROOT), include=["harness", "harness.*"]))
    for package, folder in mapped.items():  # each folder that holds files is a package of the wheel
        for sub in [ROOT / folder, *sorted((ROOT / folder).rglob("*"))]:
            if sub.is_dir() and sub.name != "__pycache__" and any(p.is_file() for p in sub.iterdir()):
                expected.add(".".join([package, *sub.relative_to(ROOT / folder).parts]))
    assert set(config["packages"]) == expected  # a new harness/ subpackage must be listed, or the wheel lacks it


def _source_copy(dest: Path) -> Path:
    """The files git would commit (tracked, plus new files not ignored): what a clean clone builds."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(source.read_bytes())
    return dest


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_runs_tasks_and_site(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(dist), str(src)], tmp_path, env)  # fmt: skip
    (wheel,) = dist.glob("harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"harness", wheel.name.split("-py3")[0] + ".dist-info"}
    for folder, packaged in (("tasks", "builtin_tasks"), ("site_templates", "site_templates")):
        shipped = {p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file()}
        shipped = {p for p in shipped if "__pycache__" not in p}
        assert {f"harness/{packaged}/{p}" for p in shipped} <= set(names), folder

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        tmp_path, env).stdout.strip())  # fmt: skip
    # Install first, then borrow the dependencies: pip must not see (let alone touch) this environment's harness.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], tmp_path, env)  # fmt: skip
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "shared-deps.pth").write_text("\n".join(sorted(shared)) + "\n", encoding="utf-8")

    work = tmp_path / "work"  # not the checkout: the current directory is on sys.path for `python -c`
    work.mkdir()
    where = _run([str(python), "-c", "import harness, harness.builtin_tasks as b, harness.sitegen.deps as d; "
                  "print(harness.__file__); print(b.__file__); print(d.TEMPLATES)"], work, env).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(purelib) for p in where), where
    no_tasks = subprocess.run([str(python), "-c", "import tasks"], cwd=work, env=env, capture_output=True, text=True)
    assert no_tasks.returncode != 0 and "No module named 'tasks'" in no_tasks.stderr

    harness_cli = str(venv / "bin" / "harness")
    listing = json.loads(_run([harness_cli, "tasks", "--json"], work, env).stdout)
    from harness.registry import TaskRegistry

    here = TaskRegistry.discover()
    assert [(t["name"], t["origin"]) for t in listing] == [(e.name, e.origin) for e in here.entries()]
    assert {t["name"]: {k: v for k, v in t.items() if k != "origin"} for t in listing} == {
        s.name: s.as_dict() for s in here.specs()
    }
    assert "bbc-news" in _run([harness_cli, "tasks"], work, env).stdout

    store = make_digits_store(tmp_path / "harness.db")
    _run([harness_cli, "site", "--db", str(store.path), "--out", str(work / "site")], work, env)
    build_site(store.path, tmp_path / "checkout-site")  # the same store through the checkout's code
    built = sorted(p.relative_to(work / "site") for p in (work / "site").rglob("*") if p.is_file())
    assert Path("index.html") in built and Path("static/site.css") in built and Path("static/site.js") in built
    for rel in built:
        if rel.name != ".harness-site.json":
            assert (work / "site" / rel).read_bytes() == (tmp_path / "checkout-site" / rel).read_bytes(), rel
