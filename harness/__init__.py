"""harness: benchmark and leaderboard harness for pretrained models."""

__version__ = "0.1.0"

# Bump when the meaning of stored results changes; it is part of every job key.
RESULT_SCHEMA_VERSION = 1
