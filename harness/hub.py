"""Hugging Face hub revisions pinned to commits, for model and dataset repos alike.

A revision (a branch such as main, or a tag) moves when the repo is updated; the commit it resolves to does
not, so results are keyed by the commit: asked of the hub when it can be reached, else read from the local
hub cache, where huggingface_hub records each revision it downloaded as <repo folder>/refs/<revision>.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

RepoType = Literal["model", "dataset"]

SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def hub_cache_dir() -> Path:
    """The hub cache huggingface_hub downloads into (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def hub_commit(
    repo_id: str, revision: str | None, *, offline: bool, repo_type: RepoType = "model"
) -> tuple[str | None, str | None]:
    """(commit, None) for a hub repo at `revision` (default main), or (None, why) when it cannot be resolved.

    A 40-hex revision is a commit already. Online, the hub is asked; offline, or when it cannot be reached,
    the commit the local hub cache's refs/<revision> file names is used."""
    rev = revision or "main"
    if SHA_RE.match(rev):
        return rev, None
    if not offline:
        try:
            from huggingface_hub import HfApi

            sha = HfApi().repo_info(repo_id, revision=rev, repo_type=repo_type, timeout=10).sha
            if sha:
                return sha, None
        except Exception:  # noqa: BLE001 - no network, unknown repo, ...: fall back to the local cache
            pass
    ref = hub_cache_dir() / f"{repo_type}s--{repo_id.replace('/', '--')}" / "refs" / rev
    try:
        commit = ref.read_text().strip() if ref.is_file() else ""  # a pipe would never end: not read
    except (OSError, UnicodeDecodeError):
        commit = ""
    if SHA_RE.match(commit):
        return commit, None
    return None, f"hub revision {rev!r} of {repo_id!r} not resolved (hub unreachable and no local snapshot)"
