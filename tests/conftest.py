"""Shared fixtures. Collection of zero tests is an error, not a silent pass."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.items and not session.config.getoption("collectonly"):
        raise pytest.UsageError("no tests were collected: refusing to report success for an empty test run")
