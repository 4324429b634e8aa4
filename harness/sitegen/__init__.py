"""Static leaderboard site built from the results store (see build.build_site)."""

from harness.sitegen.build import BuildStats, build_site
from harness.sitegen.ranking import RankingConfig

__all__ = ["BuildStats", "RankingConfig", "build_site"]
