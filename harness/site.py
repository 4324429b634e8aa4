"""store -> static leaderboard site. The implementation lives in harness.sitegen; this is its entry point."""

from harness.sitegen import BuildStats, RankingConfig, build_site

__all__ = ["BuildStats", "RankingConfig", "build_site"]
