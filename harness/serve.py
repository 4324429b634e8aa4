"""Serve a built leaderboard site over HTTP on this machine (stdlib http.server, static files only)."""

from __future__ import annotations

import functools
import http.server
import socket
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from the site folder, without a log line per request on the terminal."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".csv": "text/csv; charset=utf-8",
                      ".json": "application/json", ".js": "text/javascript", ".svg": "image/svg+xml"}  # fmt: skip

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def send_head(self) -> Any:
        """A path no file can have (a NUL byte, an unpaired surrogate: "/index.html%00", "/%ed%a0%80") is not
        found; opening it raised ValueError, printed as a traceback, and the client got no answer."""
        try:
            return super().send_head()
        except ValueError:  # UnicodeEncodeError included; raised before anything was sent
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A request that failed: no traceback on the terminal. A client that went away says nothing; any
        other failure one line (no text from the request, which may hold terminal escapes)."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            print(f"A request from {client_address[0]} failed ({type(exc).__name__}); it was not answered.", file=sys.stderr)


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8000) -> http.server.ThreadingHTTPServer:
    """A server for `directory` bound to host:port (port 0: any free port; see server.server_address)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server_class = _IPv6Server if ":" in host else _QuietServer
    return server_class((host, port), handler)


class _IPv6Server(_QuietServer):
    address_family = socket.AF_INET6  # --host ::1 (the base class listens on IPv4 only)


def server_url(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    shown = host if isinstance(host, str) else host.decode()
    if shown in ("0.0.0.0", "::", ""):
        shown = "localhost"
    elif ":" in shown:
        shown = f"[{shown}]"  # an IPv6 address in a URL
    return f"http://{shown}:{port}/"
