"""The site's copy of a large store's runs (store.run_cache): a rebuild reads only the runs that changed,
and what it gets is exactly what a full read gets; a damaged or foreign copy is read as no copy."""

from __future__ import annotations

import hashlib
import marshal
import os
from pathlib import Path
from typing import Any

import pytest
from test_site import make_digits_store  # tests/ is on sys.path, as for result_fixtures

from harness.sitegen import build_site, forking
from harness.store import Store, StoreReader, run_cache
from harness.store.run_cache import RunCache


def _full(db: Path) -> tuple:
    with StoreReader(db) as reader:
        return reader.snapshot().runs


def _cached(db: Path, folder: Path) -> tuple[tuple, RunCache]:
    cache = RunCache(db, folder, min_runs=0)
    with StoreReader(db) as reader:
        runs = reader.snapshot(cache).runs
    if cache.changed:
        cache.save(runs)
    return runs, cache


@pytest.fixture(scope="module")
def store_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cache") / "harness.db"
    make_digits_store(db).close()
    return db


def test_a_rebuild_reads_only_new_changed_runs_and_drops_deleted_ones(store_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "harness.db"
    db.write_bytes(store_db.read_bytes())
    folder = tmp_path / "cache"
    full = _full(db)
    runs, cache = _cached(db, folder)
    assert runs == full and cache.changed and cache.read_from_store == len(full)
    runs, cache = _cached(db, folder)
    assert runs == full and not cache.changed and cache.read_from_store == 0

    store = Store(db)
    gone = store.db.execute("SELECT key FROM runs WHERE model = 'naive-bayes' LIMIT 1").fetchone()[0]
    store.db.execute("DELETE FROM runs WHERE key = ?", [gone])
    store.db.execute("UPDATE runs SET finished_at = '2031-01-01T00:00:00+00:00' WHERE model = 'logreg' AND seed = 1")
    victim = store.db.execute("SELECT key FROM runs WHERE model = 'tree-d4' LIMIT 1").fetchone()[0]
    store.db.execute("UPDATE metrics SET value = 0.5 WHERE run_key = ? AND name = 'accuracy'", [victim])
    store.db.execute("UPDATE runs SET status = 'failed' WHERE key = ?", [victim])  # a re-run that failed
    cautioned = store.db.execute("SELECT key FROM runs WHERE model = 'naive-bayes' AND status = 'done'").fetchone()[0]
    store.db.execute(  # a re-run whose protocol recorded a warning (e.g. a probe that did not converge)
        "UPDATE runs SET selected_json = json_set(coalesce(selected_json, '{}'), '$.warnings', json('[\"w <1>\"]')),"
        " finished_at = '2031-01-02T00:00:00+00:00' WHERE key = ?",
        [cautioned],
    )
    store.close()
    full = _full(db)
    base = cache.path.read_bytes()
    runs, cache = _cached(db, folder)
    assert runs == full  # the order too
    changed = sum(1 for r in full if r.model == "logreg" and r.seed == 1) + 2
    assert cache.changed and cache.read_from_store == changed
    assert len(full) > 20 and not any(r.key == gone for r in runs)
    assert [r.warnings for r in full if r.key == cautioned] == [("w <1>",)]
    # a few changes are saved as a delta beside the untouched base
    assert cache.path.read_bytes() == base and cache.delta_path.exists()
    runs, cache = _cached(db, folder)
    assert runs == full and cache.read_from_store == 0  # the warning came back from the copy
    cache.delta_path.write_bytes(b"damaged")  # then the changes it held are read from the store again
    runs, cache = _cached(db, folder)
    assert runs == full and cache.read_from_store == changed


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: b"\x00garbage" * 100,
        lambda data: marshal.dumps(("another", "harness")),  # a copy from another version
        lambda data: marshal.dumps((*marshal.loads(data)[:2], ((("k",), (), None, (), ()),))),  # right stamp, bad rows
        lambda data: marshal.dumps((*marshal.loads(data)[:2], ((marshal.loads(data)[2][0][0], ((1,),), None, (), ()),))),
    ],
    ids=["empty", "truncated", "garbage", "stamp", "short-run", "short-metric"],
)
def test_a_damaged_or_foreign_copy_is_read_as_no_copy(store_db: Path, tmp_path: Path, damage) -> None:
    folder = tmp_path / "cache"
    full, cache = _cached(store_db, folder)
    cache.path.write_bytes(damage(cache.path.read_bytes()))
    runs, again = _cached(store_db, folder)
    assert runs == full and again.changed and again.read_from_store == len(full)
    assert _cached(store_db, folder)[1].read_from_store == 0  # and it was replaced by a good one


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "saved-by-the-downloads-process"])
def test_a_site_built_through_the_copy_is_the_site_a_full_read_builds(
    store_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(forking, "FORK_FROM_RUNS", 1)  # workers=2: the downloads' process saves the copy
    db = tmp_path / "harness.db"
    db.write_bytes(store_db.read_bytes())
    monkeypatch.setattr(run_cache, "MIN_RUNS", 1)
    out, uncached = tmp_path / "site", tmp_path / "uncached"
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "none"))
    monkeypatch.setattr(run_cache, "MIN_RUNS", 10**9)
    build_site(db, uncached, workers=workers)
    monkeypatch.setattr(run_cache, "MIN_RUNS", 1)
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "cache"))
    build_site(db, out, workers=workers)
    saved = {p.name.split(".", 1)[1] for p in (tmp_path / "cache").glob("*.marshal")}
    assert saved == {"marshal", "lines.marshal"}  # the runs, and their downloads' lines
    store = Store(db)
    store.db.execute("DELETE FROM runs WHERE model = 'knn-5'")
    store.close()
    monkeypatch.setattr(run_cache, "MIN_RUNS", 10**9)
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "none"))
    read_in_full = build_site(db, uncached, workers=workers)
    monkeypatch.setattr(run_cache, "MIN_RUNS", 1)
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "cache"))
    reads: list[int] = []
    runs = RunCache.runs

    def spy(self: RunCache, *args: Any) -> Any:
        got = runs(self, *args)
        reads.append(self.read_from_store)
        return got

    monkeypatch.setattr(RunCache, "runs", spy)
    through_copy = build_site(db, out, workers=workers)
    assert reads == [0]  # every run came from the copy
    # and it re-rendered only what a build reading the store re-renders (page inputs digest values)
    assert through_copy.pages_rendered == read_in_full.pages_rendered
    monkeypatch.setattr(run_cache, "MIN_RUNS", 10**9)
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "none"))
    cold = tmp_path / "cold"
    assert build_site(db, cold, workers=1).pages_rendered > through_copy.pages_rendered
    assert not (tmp_path / "none").exists()  # a small store leaves no copy
    for path in cold.rglob("*"):
        if path.is_file() and path.name != ".harness-site.json":
            assert (out / path.relative_to(cold)).read_bytes() == path.read_bytes(), path


def test_a_cache_folder_that_cannot_be_written_leaves_the_build_as_it_is(
    store_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$HARNESS_SITE_CACHE naming a file (or any folder that cannot be written): the site is built from a full
    read, as without a cache, and nothing is written there."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("mine")
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(blocker / "sub"))
    monkeypatch.setattr(run_cache, "MIN_RUNS", 1)
    stats = build_site(store_db, tmp_path / "site", workers=1)
    assert stats.pages_rendered > 0 and blocker.read_text() == "mine"
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(blocker))
    build_site(store_db, tmp_path / "site2", workers=1)
    assert blocker.read_text() == "mine"


def test_a_build_that_fails_on_a_value_from_the_copy_drops_it(
    store_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A well-formed copy holding text where a metric's number belongs (a hand-edited or damaged cache): the
    build fails, the copy is deleted, and the next build reads the store and succeeds."""
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(run_cache, "MIN_RUNS", 1)
    _, cache = _cached(store_db, tmp_path / "cache")
    stamp, base_id, flat = marshal.loads(cache.path.read_bytes())
    i = next(i for i, run in enumerate(flat) if run[1])  # a run with metrics
    fields, metrics, timing, notes, cautions = flat[i]
    bad = ((metrics[0][0], "not a number", *metrics[0][2:]), *metrics[1:])
    flat = (*flat[:i], (fields, bad, timing, notes, cautions), *flat[i + 1 :])
    cache.path.write_bytes(marshal.dumps((stamp, base_id, flat), 2))
    with pytest.raises((TypeError, ValueError)):
        build_site(store_db, tmp_path / "site", workers=1)
    assert not cache.path.exists()
    build_site(store_db, tmp_path / "site", workers=1)


def test_the_cache_can_be_turned_off(store_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HARNESS_SITE_CACHE", "off")
    monkeypatch.setattr(run_cache, "MIN_RUNS", 1)
    build_site(store_db, tmp_path / "site", workers=1)
    assert not (tmp_path / "xdg").exists() and not Path("off").exists()
    monkeypatch.delenv("HARNESS_SITE_CACHE")
    build_site(store_db, tmp_path / "site2", workers=1)
    assert len(list((tmp_path / "xdg" / "harness" / "site-runs").glob("*.marshal"))) == 2  # runs, lines


def test_the_downloads_encode_only_new_and_changed_runs_and_match_a_full_encode(
    store_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """results.csv and results.json take each run's line from the previous build's (kept beside the copy)
    unless the run is new or changed; a damaged lines file, or one made by other code, is not read."""
    from harness.sitegen import downloads, exports

    db = tmp_path / "harness.db"
    db.write_bytes(store_db.read_bytes())
    monkeypatch.setattr(run_cache, "MIN_RUNS", 1)
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "cache"))
    encoded: list[set[str]] = []
    real = exports.run_rows

    def spy(snapshot: Any) -> Any:
        encoded.append({r.key for r in snapshot.runs})
        return real(snapshot)

    monkeypatch.setattr(exports, "run_rows", spy)
    out = tmp_path / "site"
    build_site(db, out, workers=1)
    everything = encoded[-1]
    store = Store(db)
    store.db.execute("UPDATE runs SET finished_at = '2031-01-01T00:00:00+00:00' WHERE model = 'logreg' AND seed = 1")
    store.db.execute("UPDATE metrics SET value = 0.25 WHERE name = 'accuracy' AND run_key IN (SELECT key FROM runs WHERE model = 'logreg' AND seed = 1)")
    changed = {k for (k,) in store.db.execute("SELECT key FROM runs WHERE model = 'logreg' AND seed = 1")}
    store.db.execute("DELETE FROM runs WHERE model = 'tree-d4'")
    store.close()
    build_site(db, out, workers=1)
    assert encoded[-1] == changed and 0 < len(changed) < len(everything)

    def same_as_a_full_encode() -> None:
        monkeypatch.setenv("HARNESS_SITE_CACHE", run_cache.OFF)
        cold = tmp_path / "cold"
        build_site(db, cold, workers=1)
        monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "cache"))
        for name in ("results.csv", "results.json"):
            assert (out / name).read_bytes() == (cold / name).read_bytes()
            assert "0.25" in (out / name).read_text()  # the changed runs' new metric

    same_as_a_full_encode()
    lines = next((tmp_path / "cache").glob("*.lines.marshal"))
    for damage in (lambda b: b[: len(b) // 2], lambda b: marshal.dumps(("junk",))):
        lines.write_bytes(damage(lines.read_bytes()))
        (out / "results.csv").write_text("edited")  # so that the downloads are made again
        build_site(db, out, workers=1)
        assert len(encoded[-1]) == len(everything) - sum(1 for k in everything if k.startswith("tree-d4|"))
        same_as_a_full_encode()
    monkeypatch.setattr(downloads, "_lines_made_by", lambda: "other code")
    (out / "results.csv").write_text("edited")
    build_site(db, out, workers=1)
    assert len(encoded[-1]) > len(changed)  # the lines the build before saved were made by "other code"


def test_dropping_the_copy_never_raises_over_a_failed_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """drop() runs while a build fails: a cache folder that cannot be listed must not replace the build's error."""
    folder = tmp_path / "cache"
    cache = RunCache(tmp_path / "harness.db", folder)
    cache.save_beside("lines", "me", ("a", "b"))
    assert cache.load_beside("lines", "me") == ("a", "b") and cache.load_beside("lines", "other code") is None

    def unlistable(self: Path, pattern: str) -> Any:
        raise PermissionError(13, "Permission denied", str(self))

    with monkeypatch.context() as patched:
        patched.setattr(Path, "glob", unlistable)
        cache.drop()  # no error
    assert [p.name.split(".", 1)[1] for p in folder.iterdir()] == ["lines.marshal"]  # not found, so kept
    cache.drop()
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "in-workers"])
def test_a_full_build_after_a_hand_edit_is_the_site_a_cold_build_makes(
    store_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """A value edited by hand keeps its run's (key, status, finished_at): an incremental build keeps the pages,
    the copy and the downloads made from the old value. `full` reuses none of them, and the next incremental
    build goes on from what it read."""
    monkeypatch.setattr(forking, "FORK_FROM_RUNS", 1)
    monkeypatch.setattr(run_cache, "MIN_RUNS", 1)
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "cache"))
    db = tmp_path / "harness.db"
    db.write_bytes(store_db.read_bytes())
    out = tmp_path / "site"
    build_site(db, out, workers=workers)
    store = Store(db)
    store.db.execute(
        "UPDATE metrics SET value = 0.4321, ci_low = 0.4, ci_high = 0.45 WHERE name = 'macro_f1' AND run_key = "
        "(SELECT key FROM runs WHERE model = 'logreg' AND status = 'done' ORDER BY key LIMIT 1)"
    )
    store.close()
    assert build_site(db, out, workers=workers).pages_rendered == 0  # what `full` is for
    assert not any("0.432" in p.read_text() for p in out.rglob("*.html"))
    monkeypatch.setenv("HARNESS_SITE_CACHE", run_cache.OFF)
    cold = tmp_path / "cold"
    build_site(db, cold, workers=1)
    assert any("0.432" in p.read_text() for p in cold.rglob("*.html"))
    monkeypatch.setenv("HARNESS_SITE_CACHE", str(tmp_path / "cache"))
    for build in ({"full": True}, {}):  # the full build, then an incremental one from what it left
        build_site(db, out, workers=workers, **build)
        for path in cold.rglob("*"):
            if path.is_file() and path.name != ".harness-site.json":
                assert (out / path.relative_to(cold)).read_bytes() == path.read_bytes(), (build, path)


def test_a_store_whose_path_is_not_utf8_has_a_copy(store_db: Path, tmp_path: Path) -> None:
    """A store named with a byte that is not UTF-8 (Python's '\\udcff'): harness run wrote it, and every site
    build then failed with a UnicodeEncodeError traceback naming the copy's file name. The name of a UTF-8
    path's copy is what it was (same bytes hashed)."""
    db = tmp_path / os.fsdecode(b"\xff.db")
    db.write_bytes(store_db.read_bytes())
    runs, cache = _cached(db, tmp_path / "cache")
    assert runs == _full(db) and cache.path.exists()
    plain = tmp_path / "plain.db"
    assert RunCache(plain, tmp_path).path.name.startswith(hashlib.sha256(str(plain.resolve()).encode()).hexdigest()[:32])
