"""Tasks shipped with harness: Python tasks on offline package data, YAML tasks on hub datasets."""

from __future__ import annotations

from pathlib import Path

from harness.builtin_tasks.bbc_news import BbcNews
from harness.builtin_tasks.digits import Digits
from harness.builtin_tasks.tweet_sentiment import TweetSentiment
from harness.tasks import Task

BUILTIN_TASK_CLASSES: tuple[type[Task], ...] = (BbcNews, TweetSentiment, Digits)


def builtin_yaml_files() -> list[Path]:
    return sorted(Path(__file__).parent.glob("*.yaml"))


__all__ = ["BUILTIN_TASK_CLASSES", "BbcNews", "Digits", "TweetSentiment", "builtin_yaml_files"]
