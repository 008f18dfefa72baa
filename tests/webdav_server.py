"""A real WebDAV server for the tests: WsgiDAV on cheroot, on a random loopback port.

It serves a temporary folder to two accounts over Basic auth (the job's app password and an
organiser's), with WsgiDAV's own lock manager, ETags (inode-mtime-size) and RFC 7232
conditionals, so `If-Match`, 412, LOCK and 423 are the server's, not ours. `before_put` lets
a test act just before an upload reaches the server — an organiser saving at that moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp

USER, PASSWORD = "leergang", "app-wachtwoord-123"
ORGANISER, ORGANISER_PASSWORD = "annemiek", "organisator-456"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class WebDavServer:
    """The running server: `url(name)` of a file in its folder, `env()` for the tool."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.before_put: list[Callable[[], None]] = []  # each runs once, before one PUT
        self.requests: list[tuple[str, str]] = []  # (method, path) as the server saw them
        self.weak_etags = 0  # answer this many GETs with a weak ETag, as Apache's mod_dav
        # does for a file changed within the last second

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def env(self) -> dict[str, str]:
        return {"LEERGANG_WEBDAV_USER": USER, "LEERGANG_WEBDAV_PASSWORD": PASSWORD}

    def methods(self) -> list[str]:
        return [method for method, _ in self.requests]


class _Recording:
    """WSGI middleware: records each request, and runs `before_put` hooks once each."""

    def __init__(self, app: Callable[[Environ, StartResponse], Iterable[bytes]],
                 server: WebDavServer) -> None:
        self.app, self.server = app, server

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        self.server.requests.append((method, environ.get("PATH_INFO", "")))
        if method == "PUT" and self.server.before_put:
            self.server.before_put.pop(0)()
        if method == "GET" and self.server.weak_etags:
            self.server.weak_etags -= 1
            return self.app(environ, _weakening(start_response))
        return self.app(environ, start_response)


def _weakening(start_response: StartResponse) -> StartResponse:
    def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
        headers = [(k, f"W/{v}" if k.lower() == "etag" else v) for k, v in headers]
        return start_response(status, headers, *args)
    return start


@contextmanager
def webdav_server(root: Path) -> Iterator[WebDavServer]:
    config = {
        "host": "127.0.0.1",
        "port": 0,
        "provider_mapping": {"/": str(root)},
        "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD},
                                             ORGANISER: {"password": ORGANISER_PASSWORD}}}},
        "http_authenticator": {"accept_basic": True, "accept_digest": False,
                               "default_to_digest": False},
        "lock_storage": True,
        "property_manager": True,
        "verbose": 0,
        "logging": {"enable": False, "enable_loggers": []},
        "dir_browser": {"enable": False},
    }
    server = WebDavServer(root, 0)
    app = _Recording(WsgiDAVApp(config), server)
    httpd = wsgi.Server(("127.0.0.1", 0), app, numthreads=4)
    httpd.prepare()
    server.port = httpd.bind_addr[1]
    thread = threading.Thread(target=httpd.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.stop()
        thread.join(timeout=5)
