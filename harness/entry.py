"""The `harness` console script: harness.cli's app, with a Ctrl-C that arrives while the CLI is still being
imported (~0.6 s, before any command runs) ending as one during a command does: a line and exit 130, not a
traceback of whichever import it interrupted."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from harness.cli import app
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted (Ctrl-C): `harness` was still starting; nothing was done.\n")
        raise SystemExit(130) from None
    app()
