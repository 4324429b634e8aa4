"""`harness serve` and `harness browse` (typer command functions; registered in harness.cli)."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from harness.console import esc, one_paragraph, output_console
from harness.errors import HarnessError
from harness.store import DEFAULT_DB


def serve(
    site_dir: Annotated[Path, typer.Option("--site", help="Folder of a built site (harness site --out).")] = Path("site"),
    db: Annotated[Path, typer.Option("--db", help="Results database to build the site from when it is missing or with --build.")] = DEFAULT_DB,
    build: Annotated[bool, typer.Option("--build", help="(Re)build the site from --db before serving.")] = False,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (default: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")] = 8000,
) -> None:
    """Serve the leaderboard site on http://localhost (builds it first if it is not built yet). Ctrl-C stops."""
    from harness.serve import make_server, server_url

    console = output_console()
    if site_dir.exists() and not site_dir.is_dir():
        raise HarnessError(f"--site {site_dir} is a file; give the folder `harness site --out` wrote.")
    needs_build = build or not (site_dir / "index.html").is_file()
    if needs_build and not db.is_file():
        raise HarnessError(
            f"No built site in {site_dir}/ and no results database at {db} to build one from. "
            "Run a suite first (harness run suites/demo.yaml), or pass --site / --db."
        )
    if not host.strip():  # the socket layer reads "" as every interface: never what an empty variable meant
        raise HarnessError("--host is empty; give an address, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).")
    try:  # the address first: a port in use or an unknown host must not leave a freshly built site behind
        server = make_server(site_dir, host, port)
    except OSError as exc:
        raise HarnessError(_listen_error(host, port, exc)) from None
    if needs_build:
        from harness.commands.site_cmd import build_with_status

        try:
            stats = build_with_status(console, db, site_dir)
        except BaseException:
            server.server_close()
            raise
        console.print(f"Built the site from {esc(one_paragraph(db))} into {esc(one_paragraph(site_dir))}/ ({len(stats.written)} files written).", highlight=False)
    url = server_url(server)
    console.print(f"Serving {esc(one_paragraph(site_dir))}/ at [bold]{url}[/bold]  (Ctrl-C to stop)", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("Stopped.", highlight=False)
    finally:
        server.server_close()


def _listen_error(host: str, port: int, exc: OSError) -> str:
    """Whether --host or --port is at fault, from the error the socket layer gave."""
    shown = host if len(host) <= 80 else host[:77] + "..."  # the message is escaped where it is printed
    reason = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return (f"Cannot listen on --host {shown} ({reason}): give an address of this machine, e.g. 127.0.0.1 "
                "(this machine only), ::1, or 0.0.0.0 (every interface).")  # fmt: skip
    if exc.errno == errno.EADDRINUSE or port == 0:
        return f"Cannot listen on {shown}:{port} ({reason}). Try another --port, or --port 0 for any free one."
    return f"Cannot listen on {shown}:{port} ({reason})."


def browse(
    db: Annotated[Path, typer.Option("--db", help="Results database to browse (opened read-only, immutable).")] = DEFAULT_DB,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port for Datasette.")] = 8001,
) -> None:
    """Explore the results database in Datasette (SQL, facets, JSON/CSV), read-only. Needs the browse extra."""
    if not db.is_file():
        raise HarnessError(f"No results database at {db}; pass --db with the file `harness run` wrote.")
    executable = shutil.which("datasette")
    if executable is None:
        raise HarnessError("harness browse runs Datasette, which is not installed: pip install -e '.[browse]' (or pip install datasette).")
    command = [executable, "serve", "--immutable", str(db), "--host", "127.0.0.1", "--port", str(port)]
    output_console().print(f"Datasette on [bold]http://127.0.0.1:{port}/[/bold] (Ctrl-C to stop): {esc(' '.join(command))}", highlight=False)
    try:
        raise typer.Exit(subprocess.call(command))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
