"""harness: benchmark and leaderboard harness for pretrained models."""

from harness.package_data import install_checkout_finder

__version__ = "0.1.0"

# Bump when the meaning of stored results changes; it is part of every job key.
RESULT_SCHEMA_VERSION = 1

install_checkout_finder()  # harness.builtin_tasks from <checkout>/tasks when run from a source checkout
