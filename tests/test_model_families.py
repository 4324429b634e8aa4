"""The family table and the `harness.models` entry-point group: a package installed on sys.path (a real
.dist-info with entry_points.txt, found by importlib.metadata) adds a model family, which then validates,
lists, plans, runs, stores and shows like a built-in one."""

from __future__ import annotations

import importlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_suite
from harness.errors import ConfigError, HarnessError
from harness.executors.ray import RayOptions, worker_resources
from harness.models import BUILTIN_FAMILIES, ModelSpec, families, family, load_adapter
from harness.models.families import Family, family_origin, reload_families
from harness.models.identity import DigestCache, model_identity

PACKAGE = '''
import numpy as np

from harness.models import Family, ModelAdapter

LETTERS = "abcdefghijklmnopqrstuvwxyz"


class LetterCounts(ModelAdapter):
    """Relative letter frequencies: 26 features, no weights."""

    modality = "text"

    def info(self):
        return self.model_info(params=0, description="relative letter frequencies", feature_dim=26)

    def encode(self, inputs):
        out = np.zeros((len(inputs), 26), dtype=np.float32)
        for i, text in enumerate(inputs):
            for ch in str(text).lower():
                j = LETTERS.find(ch)
                if j >= 0:
                    out[i, j] += 1
        return out / np.maximum(out.sum(axis=1, keepdims=True), 1)

    @property
    def feature_cache_id(self):
        return None


LETTER_COUNTS = Family("letter_counts", "text", "letterfam:LetterCounts", cpu_only=True, fp32_only=True,
                       packages=("letterfam",))
'''


def install(site: Path, entry_points: str, package: str = PACKAGE) -> None:
    """What pip leaves on sys.path for a package declaring [project.entry-points."harness.models"]."""
    (site / "letterfam").mkdir(parents=True, exist_ok=True)
    (site / "letterfam" / "__init__.py").write_text(package)
    info = site / "letterfam-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: letterfam\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[harness.models]\n{entry_points}\n")
    importlib.invalidate_caches()  # new files on sys.path (finders' and importlib.metadata's directory caches)
    sys.modules.pop("letterfam", None)
    reload_families()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    reload_families()
    yield path
    monkeypatch.undo()
    sys.modules.pop("letterfam", None)
    reload_families()


SUITE = """
name: letters
tasks:
  - name: bbc-news
    subsample: {train: 120, validation: 60, test: 100, seed: 0}
models:
  - {name: letters, family: letter_counts}
protocols:
  - {name: linear_probe, Cs: [1.0]}
timing: {warmup: 0, batch1_iters: 2, throughput_batches: 1}
bootstrap: {n_boot: 50, seed: 0}
"""


def test_builtin_rows_are_the_table_without_plugins(site: Path) -> None:
    assert list(families().values()) == list(BUILTIN_FAMILIES)
    assert {f.name for f in BUILTIN_FAMILIES if f.cpu_only} == {"tfidf", "pixels", "vader"}
    assert {f.name for f in BUILTIN_FAMILIES if f.fp32_only} == {"tfidf", "pixels", "vader", "onnx"}
    assert family("hf_causal_lm").spec_check == "harness.models.causal_lm_spec:check_spec"
    assert family("onnx").implementation == "onnx_encoder:OnnxTextEncoder"
    with pytest.raises(HarnessError, match='Unknown model family "hf_txt". Did you mean "hf_text"'):
        family("hf_txt")


def test_spec_keys_are_the_model_keys_a_family_may_leave_unread() -> None:
    from dataclasses import fields

    from harness.models.families import SPEC_KEYS

    every_family = {"name", "family", "device", "precision", "batch_size", "license", "options"}
    assert set(SPEC_KEYS) == {f.name for f in fields(ModelSpec)} - every_family
    assert {f.name for f in BUILTIN_FAMILIES if not f.spec_keys} == {"tfidf", "pixels", "vader"}
    with pytest.raises(ValueError, match="spec_keys must be among source, revision, .*got 'pooler'"):
        Family("x", "text", "m:C", spec_keys=("pooler",))


def test_an_installed_package_adds_a_family_that_runs_end_to_end(site: Path, tmp_path: Path) -> None:
    install(site, "letters = letterfam:LETTER_COUNTS")
    row = family("letter_counts")
    assert row.modality == "text" and not row.gpu_capable
    assert family_origin("letter_counts") == "entry point 'letters = letterfam:LETTER_COUNTS' of package letterfam 1.0"

    cli = CliRunner()
    listed = cli.invoke(app, ["models", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {"family": "letter_counts", "modality": "text", "implementation": "letterfam:LetterCounts"} in json.loads(
        listed.output
    )

    # the table's flags reach the suite parser, the Ray executor and the model identity
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(SUITE.replace("family: letter_counts}", "family: letter_counts, device: cuda}"))
    with pytest.raises(ConfigError, match=r"key 'models\[0\].device' must be auto or cpu \(family letter_counts runs on the CPU only"):
        load_suite(suite_path)
    spec = ModelSpec(name="letters", family="letter_counts", device="cuda")
    assert worker_resources(spec, RayOptions(), cluster_gpus=1) == {"num_cpus": 1.0, "num_gpus": 0.0}
    identity = model_identity(ModelSpec(name="letters", family="letter_counts"), DigestCache(None))
    assert identity.kind == "none" and identity.packages == (("letterfam", "1.0"),)

    suite_path.write_text(SUITE)
    db = tmp_path / "results.db"
    result = cli.invoke(app, ["run", str(suite_path), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    con = sqlite3.connect(db)
    try:
        runs = con.execute("SELECT model, task, protocol, status FROM runs").fetchall()
        accuracy = con.execute("SELECT value FROM metrics WHERE name = 'accuracy'").fetchall()
        (stored,) = con.execute("SELECT family, modality, params FROM models").fetchall()
    finally:
        con.close()
    assert runs == [("letters", "bbc-news", "linear_probe", "done")]
    assert stored == ("letter_counts", "text", 0)
    # letter frequencies carry some signal about a news topic: better than the 1-in-5 of a constant guess
    assert len(accuracy) == 1 and 0.25 < accuracy[0][0] <= 1.0
    shown = cli.invoke(app, ["show", "--db", str(db)])
    assert shown.exit_code == 0 and "letters" in shown.output, shown.output
    features = load_adapter(ModelSpec(name="x", family="letter_counts")).encode(["ab", "zz"])
    assert features.shape == (2, 26) and features[0, 0] == features[0, 1] == 0.5 and features[1, 25] == 1.0


def test_a_bad_family_entry_point_is_a_clear_error_naming_it(site: Path) -> None:
    install(site, "dup = letterfam:DUPLICATE", PACKAGE + '\nDUPLICATE = Family("tfidf", "text", "letterfam:LetterCounts")\n')
    with pytest.raises(ConfigError, match=r'Two model families are named "tfidf": one from built-in, one from entry point \'dup'):
        families()

    install(site, "odd = letterfam:LETTERS", PACKAGE)
    with pytest.raises(ConfigError, match=r"entry point 'odd = letterfam:LETTERS' .* \(group harness.models\): loads str, expected"):
        families()

    install(site, "bad = letterfam:BAD", PACKAGE + '\nBAD = Family("bad", "audio", "letterfam.LetterCounts")\n')
    with pytest.raises(ConfigError) as err:
        families()
    message = str(err.value)
    assert "entry point 'bad = letterfam:BAD'" in message and "failed to import" in message
    assert "modality must be one of text, image, got 'audio'" in message
    assert "adapter must be a 'package.module:attribute' string, got 'letterfam.LetterCounts'" in message


def test_reading_the_table_imports_no_model_code() -> None:
    code = "import sys, harness.models; harness.models.families(); print(sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_edit_to_an_installed_family_adapter_changes_the_model_identity(site: Path) -> None:
    """An editable install (pip install -e) of a family's package: its version stays, its code changes. The
    adapter's source file is part of the identity, so the jobs re-run instead of keeping the old code's results."""
    install(site, "letters = letterfam:LETTER_COUNTS")
    spec = ModelSpec(name="letters", family="letter_counts")
    before = model_identity(spec, DigestCache(None))
    install(site, "letters = letterfam:LETTER_COUNTS", PACKAGE.replace("out[i, j] += 1", "out[i, j] += 2"))
    after = model_identity(spec, DigestCache(None))
    assert after.packages == before.packages and after.token != before.token
    assert "code" in after.as_dict()  # built-in families keep their identities: no code entry
    assert "code" not in model_identity(ModelSpec(name="t", family="tfidf"), DigestCache(None)).as_dict()
