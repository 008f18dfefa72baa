"""A stand-in for Microsoft Graph and its sign-in: Microsoft 365 cannot be reached from here.

This is NOT Microsoft's service. It implements only the documented endpoints the tool uses,
with the documented shapes (Microsoft Graph v1.0 reference: driveItem get, download content,
shares, workbook createSession/closeSession, worksheet range get/update, range format fill
update; Microsoft identity platform: OpenID configuration and the client credentials token
request), over TLS with a test certificate, because MSAL wants an https authority:

- `GET /{tenant}/v2.0/.well-known/openid-configuration`, `POST /{tenant}/oauth2/v2.0/token`
  (`invalid_client` with AADSTS7000215 for a wrong secret, as Entra ID answers);
- `GET /v1.0/drives/{d}/items/{i}` → `{id, name, eTag, file, parentReference.driveId}`;
  `…/content` → 302 to a download address (as Graph does), which serves the bytes;
  `GET /v1.0/shares/u!{base64url}/driveItem`;
- `POST …/workbook/createSession` → 201 `{id, persistChanges}`; `…/closeSession` → 204;
- `GET|PATCH …/workbook/worksheets('{name}')/range(address='…')` (values, numberFormat) and
  `PATCH …/range(address=…)/format/fill` (color) and `…/format/font` (color, bold); the
  stored workbook is changed with openpyxl, which stands in for Excel's own service;
- errors as `{"error": {"code", "message"}}`: 401 InvalidAuthenticationToken, 403
  accessDenied, 404 itemNotFound, 423 resourceLocked (a PUT of the content while "open").
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import openpyxl

TENANT = "contoso-tenant-id"
CLIENT_ID, CLIENT_SECRET = "11111111-2222-3333-4444-555555555555", "app-geheim~abc123"
DRIVE, ITEM = "b!Tr3n7s", "01ABCDEFLEERGANG"
SHARE_LINK = "https://contoso.sharepoint.com/:x:/s/leergang/EabcDEF123?e=xyz"


@dataclass
class StandIn:
    """The running stand-in and what it saw."""

    file: Path
    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    on_create_session: list[Callable[[], None]] = field(default_factory=list)  # once each
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)  # path part → error
    book: Any = None  # the workbook as "Excel's service" holds it (openpyxl, in memory)

    def workbook(self) -> Any:
        if self.book is None:
            self.book = openpyxl.load_workbook(self.file)
        return self.book

    def saved(self) -> Path:
        """The stored file with every change the service made (as a download gets it)."""
        if self.book is not None:
            self.book.save(self.file)
            self.book = None
        return self.file

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def item_url(self) -> str:
        return f"{self.base}/v1.0/drives/{DRIVE}/items/{ITEM}"

    def env(self, ca: Path) -> dict[str, str]:
        return {"LEERGANG_GRAPH_TENANT": TENANT, "LEERGANG_GRAPH_CLIENT_ID": CLIENT_ID,
                "LEERGANG_GRAPH_CLIENT_SECRET": CLIENT_SECRET,
                "LEERGANG_GRAPH_AUTHORITY": self.base, "LEERGANG_GRAPH_URL": f"{self.base}/v1.0",
                "SSL_CERT_FILE": str(ca)}

    def methods(self) -> list[str]:
        return [f"{m} {p.split('/workbook')[-1] if '/workbook' in p else p}"
                for m, p in self.requests]


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": "2026-12-07T12:00:00", "request-id": "stand-in"}}}


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _reply(self, status: int, body: object = None, headers: dict[str, str] | None = None,
               raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if raw is None and body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self, method: str) -> None:
        with self.lock:
            self._dispatch(method)

    def _dispatch(self, method: str) -> None:
        s = self.standin
        path = unquote(urlsplit(self.path).path)
        s.requests.append((method, path))
        body = self._body()
        if path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
            return self._reply(200, {
                "token_endpoint": f"{s.base}/{TENANT}/oauth2/v2.0/token",
                "authorization_endpoint": f"{s.base}/{TENANT}/oauth2/v2.0/authorize",
                "issuer": f"{s.base}/{TENANT}/v2.0"})
        if path == f"/{TENANT}/oauth2/v2.0/token":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if form.get("client_secret") != CLIENT_SECRET or form.get("client_id") != CLIENT_ID:
                return self._reply(401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. "
                                         "Ensure the secret being sent in the request is the "
                                         "client secret value, not the client secret ID.",
                    "error_codes": [7000215]})
            return self._reply(200, {"token_type": "Bearer", "expires_in": 3599,
                                     "ext_expires_in": 3599, "access_token": "stand-in-token"})
        if path == "/download/leergang.xlsx":  # the pre-authenticated download address
            return self._reply(200, raw=s.saved().read_bytes(),
                               headers={"Content-Type": "application/octet-stream"})
        if self.headers.get("Authorization") != "Bearer stand-in-token":
            return self._reply(401, _error("InvalidAuthenticationToken",
                                           "Access token is empty."))
        for part, (status, code) in s.refuse.items():
            if part in path:
                return self._reply(status, _error(code, "Refused by the test."))
        item = f"/v1.0/drives/{DRIVE}/items/{ITEM}"
        share = "u!" + base64.urlsafe_b64encode(SHARE_LINK.encode()).decode().rstrip("=")
        if path in (item, f"/v1.0/shares/{share}/driveItem") and method == "GET":
            return self._reply(200, {"id": ITEM, "name": "leergang wijkaanpak.xlsx",
                                     "eTag": '"{3F2504E0-4F89-11D3-9A0C-0305E82C3301},1"',
                                     "size": s.file.stat().st_size,
                                     "file": {"mimeType": "application/vnd.openxmlformats-"
                                                          "officedocument.spreadsheetml.sheet"},
                                     "parentReference": {"driveId": DRIVE}})
        if path == f"{item}/content" and method == "GET":
            return self._reply(302, headers={"Location": f"{s.base}/download/leergang.xlsx"})
        if path == f"{item}/content" and method == "PUT":
            return self._reply(423, _error("resourceLocked", "The resource you are attempting "
                                           "to access is locked"))
        if path == f"{item}/workbook/createSession" and method == "POST":
            if s.on_create_session:
                s.on_create_session.pop(0)()
            session = f"session-{len(s.sessions) + 1}"
            s.sessions.append(session)
            return self._reply(201, {"id": session, "persistChanges": True})
        if path == f"{item}/workbook/closeSession" and method == "POST":
            return self._reply(204)
        match = re.fullmatch(rf"{re.escape(item)}/workbook/worksheets\('(.+)'\)/range"
                             r"\(address='([A-Z]+\d+(?::[A-Z]+\d+)?)'\)(/format/(?:fill|font))?",
                             path)
        if match:
            if self.headers.get("workbook-session-id") not in s.sessions and method == "PATCH":
                return self._reply(400, _error("InvalidSessionId", "No such session."))
            return self._range(method, match[1].replace("''", "'"), match[2], match[3], body)
        return self._reply(404, _error("itemNotFound", "The resource could not be found."))

    def _range(self, method: str, sheet: str, address: str, fill: str | None,
               body: bytes) -> None:
        book = self.standin.workbook()
        if sheet not in book.sheetnames:
            return self._reply(404, _error("ItemNotFound", f"Worksheet {sheet} not found."))
        ws = book[sheet]
        cells = ws[address] if ":" in address else ((ws[address],),)
        if method == "GET":
            values = [["" if c.value is None else c.value for c in row] for row in cells]
            return self._reply(200, {"address": f"{sheet}!{address}", "values": values})
        data = json.loads(body or b"{}")
        if fill == "/format/fill":
            colour = data["color"].lstrip("#")
            for row in cells:
                for c in row:
                    c.fill = openpyxl.styles.PatternFill("solid", fgColor=f"FF{colour}")
        elif fill == "/format/font":
            for row in cells:
                for c in row:
                    font = copy(c.font)
                    if "color" in data:
                        font.color = f"FF{data['color'].lstrip('#')}"
                    if "bold" in data:
                        font.bold = bool(data["bold"])
                    c.font = font
        else:
            formats = data.get("numberFormat")
            for r, row in enumerate(cells):
                for k, c in enumerate(row):
                    value = data["values"][r][k]
                    fmt = formats[r][k] if formats else "General"
                    if isinstance(value, int | float) and fmt and "yy" in fmt:
                        value = datetime(1899, 12, 30) + timedelta(days=value)
                        if "h" not in fmt:
                            value = value.date()
                    c.value = None if value == "" else value
                    if fmt and fmt != "General":
                        c.number_format = fmt
        return self._reply(200, {"address": f"{sheet}!{address}"})


@contextmanager
def graph_standin(file: Path, cert: Path, key: Path) -> Iterator[StandIn]:
    standin = StandIn(file)
    handler = type("Handler", (_Handler,), {"standin": standin})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    standin.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        httpd.shutdown()
        httpd.server_close()
