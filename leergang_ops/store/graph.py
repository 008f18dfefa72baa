"""A workbook in Microsoft 365 (SharePoint, OneDrive, Teams) through Microsoft Graph.

Replacing the file fails while somebody has it open in Excel (`423 resourceLocked`) and would
fight co-authoring, so the file is only *read* whole; the tool's cells are written through
Excel's workbook service, as a co-author would: a session (`createSession`), range `PATCH`es,
`closeSession`. Endpoints used (Microsoft Graph v1.0 documentation):

- token: OAuth 2.0 client credentials at `{authority}/oauth2/v2.0/token`, scope
  `{graph}/.default`, through MSAL (`ConfidentialClientApplication.acquire_token_for_client`);
- `GET /shares/{u!base64url(link)}/driveItem` turns a sharing link into its drive item;
- `GET /drives/{drive}/items/{item}` (name, eTag) and `…/content` (a 302 to the download);
- `POST …/workbook/createSession` `{"persistChanges": true}` → `{"id"}`, sent after as the
  `workbook-session-id` header; `GET …/workbook/worksheets/{name}/range(address='E2:E51')`
  → `{"values": [[…]]}`; `PATCH` the same with `{"values", "numberFormat"}`, and
  `…/range(address='L5')/format/fill` with `{"color": "#RRGGBB"}` and `…/format/font`
  with `{"color", "bold"}`; `POST
  …/workbook/closeSession`;
- errors are `{"error": {"code", "message"}}`: 401 `InvalidAuthenticationToken`, 403
  `accessDenied` (with `Sites.Selected`: the site was not granted), 404 `itemNotFound`,
  423 `resourceLocked`, 429/503 with `Retry-After`.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from leergang_ops.errors import InputError, WorkbookInUse

log = logging.getLogger(__name__)

PREFIX = "LEERGANG_GRAPH"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH = "https://graph.microsoft.com/v1.0"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
SHARING_HOSTS = ("sharepoint.com", "sharepoint.us", "1drv.ms", "onedrive.live.com")
MAX_THROTTLE_WAIT = 30.0  # seconds: at most this long for one Retry-After
EXCEL_EPOCH = date(1899, 12, 30)


def graph_url(env: Mapping[str, str]) -> str:
    return (env.get(f"{PREFIX}_URL", "").strip() or DEFAULT_GRAPH).rstrip("/")


def is_graph_address(url: str, env: Mapping[str, str]) -> bool:
    """A Graph item address (under LEERGANG_GRAPH_URL) or a SharePoint/OneDrive link."""
    host = (urlsplit(url).hostname or "").lower()
    return url.startswith(graph_url(env) + "/") or any(
        host == h or host.endswith("." + h) for h in SHARING_HOSTS)


@dataclass(frozen=True)
class Item:
    drive: str
    item: str
    name: str
    etag: str


@dataclass(frozen=True)
class RangeWrite:
    """Values (and number formats) for one rectangular range; fills and fonts per cell."""

    address: str  # A1 style, e.g. "L5:N5"
    values: list[list[Any]]
    number_formats: list[list[str | None]]
    fills: Sequence[tuple[str, str]]  # (cell address, "#RRGGBB")
    fonts: Sequence[tuple[str, dict[str, Any]]] = ()  # (cell address, {"color", "bold"})


class Graph:
    """One workbook in Microsoft 365; errors are Dutch messages naming the address."""

    def __init__(self, url: str, env: Mapping[str, str]) -> None:
        self.url = url
        self.base = graph_url(env)
        names = ("TENANT", "CLIENT_ID", "CLIENT_SECRET")
        values = {n: env.get(f"{PREFIX}_{n}", "").strip() for n in names}
        missing = [f"{PREFIX}_{n}" for n, v in values.items() if not v]
        if missing:
            raise InputError(f"{url}: stel {', '.join(missing)} in (een app-registratie met "
                             "Sites.Selected, voor deze site toegekend door de beheerder) om "
                             "de werkmap in Microsoft 365 te lezen.")
        authority = (env.get(f"{PREFIX}_AUTHORITY", "").strip() or DEFAULT_AUTHORITY)
        self._authority = f"{authority.rstrip('/')}/{values['TENANT']}"
        self._client_id, self._secret = values["CLIENT_ID"], values["CLIENT_SECRET"]
        self._microsoft = authority.rstrip("/") == DEFAULT_AUTHORITY
        self._app: Any = None
        self._http = httpx.Client(timeout=TIMEOUT, follow_redirects=True,
                                  headers={"User-Agent": "leergang-ops"})
        self.session: str | None = None

    def close(self) -> None:
        self._http.close()

    # --- sign-in ------------------------------------------------------------------------

    def _token(self) -> str:
        import msal

        root = "{0.scheme}://{0.netloc}".format(urlsplit(self.base))
        try:
            if self._app is None:
                self._app = msal.ConfidentialClientApplication(
                    self._client_id, client_credential=self._secret,
                    authority=self._authority,
                    # Outside Microsoft's clouds (a national cloud's own authority, or a
                    # test stand-in) MSAL must not ask Microsoft whether it knows it.
                    instance_discovery=self._microsoft,
                    # One HTTP stack for sign-in and Graph: httpx, whose TLS honours
                    # SSL_CERT_FILE (requests lets REQUESTS_CA_BUNDLE override any
                    # verify= given to its session).
                    http_client=self._http)
            result = self._app.acquire_token_for_client(scopes=[f"{root}/.default"])
        except Exception as err:  # MSAL raises httpx's, ValueError and its own alike
            raise InputError(f"{self.url}: aanmelden bij Microsoft 365 lukt niet "
                             f"({type(err).__name__}: {err}); controleer "
                             f"{PREFIX}_TENANT en {PREFIX}_AUTHORITY.") from err
        if "access_token" not in result:
            code = result.get("error", "?")
            said = (str(result.get("error_description", "")).splitlines() or [""])[0]
            raise InputError(f"{self.url}: aanmelden bij Microsoft 365 geweigerd ({code}: "
                             f"{said}); "
                             f"controleer {PREFIX}_CLIENT_ID en het geheim in "
                             f"{PREFIX}_CLIENT_SECRET.")
        return str(result["access_token"])

    # --- the item ----------------------------------------------------------------------

    def item(self) -> Item:
        """The drive item the address names: a Graph item address or a sharing link."""
        if self.url.startswith(self.base + "/"):
            path = self.url[len(self.base):].split("?")[0]
            data = self._json("GET", path)
        else:
            share = "u!" + base64.urlsafe_b64encode(self.url.encode()).decode().rstrip("=")
            data = self._json("GET", f"/shares/{share}/driveItem")
        drive = data.get("parentReference", {}).get("driveId", "")
        if "file" not in data or not drive:
            raise InputError(f"{self.url}: dit adres wijst niet naar een bestand in Microsoft "
                             "365; gebruik de deellink van de werkmap of het "
                             ".../drives/{id}/items/{id}-adres.")
        return Item(drive, str(data["id"]), str(data.get("name", "werkmap.xlsx")),
                    str(data.get("eTag", "")))

    def download(self, item: Item) -> bytes:
        response = self._send("GET", f"/drives/{item.drive}/items/{item.item}/content")
        if not response.content.startswith(b"PK"):
            raise InputError(f"{self.url}: dit is geen Excel-werkmap (.xlsx); er is niets "
                             "gedaan.")
        return response.content

    # --- the workbook service ------------------------------------------------------------

    def open_session(self, item: Item) -> None:
        data = self._json("POST", f"{_book(item)}/createSession", json={"persistChanges": True},
                          doing="schrijven")
        self.session = str(data["id"])

    def close_session(self, item: Item) -> None:
        if self.session is not None:
            try:
                self._send("POST", f"{_book(item)}/closeSession", doing="schrijven")
            finally:
                self.session = None

    def read_range(self, item: Item, sheet: str, address: str) -> list[list[Any]]:
        data = self._json("GET", f"{_range(item, sheet, address)}")
        return list(data.get("values", []))

    def write(self, item: Item, sheet: str, block: RangeWrite) -> None:
        body: dict[str, Any] = {"values": block.values}
        if any(f for row in block.number_formats for f in row):
            body["numberFormat"] = [[f or "General" for f in row]
                                    for row in block.number_formats]
        self._send("PATCH", _range(item, sheet, block.address), json=body, doing="schrijven")
        for cell, colour in block.fills:
            self._send("PATCH", f"{_range(item, sheet, cell)}/format/fill",
                       json={"color": colour}, doing="schrijven")
        for cell, font in block.fonts:
            self._send("PATCH", f"{_range(item, sheet, cell)}/format/font", json=font,
                       doing="schrijven")

    # --- HTTP -----------------------------------------------------------------------------

    def _json(self, method: str, path: str, *, doing: str = "lezen",
              **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, doing=doing, **kwargs)
        try:
            data = response.json()
        except ValueError as err:
            raise InputError(f"{self.url}: Microsoft Graph gaf geen leesbaar antwoord op "
                             f"{method} {path}.") from err
        return data if isinstance(data, dict) else {}

    def _send(self, method: str, path: str, *, doing: str = "lezen",
              **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token()}"}
        if self.session:
            headers["workbook-session-id"] = self.session
        for _ in range(3):
            try:
                response = self._http.request(method, self.base + path, headers=headers,
                                              **kwargs)
            except httpx.HTTPError as err:
                raise InputError(f"{self.url}: Microsoft Graph is niet bereikbaar "
                                 f"({type(err).__name__}: {err}); controleer de verbinding en "
                                 f"{PREFIX}_URL.") from err
            if response.status_code in (429, 503):
                wait = float(response.headers.get("Retry-After", "2") or 2)
                time.sleep(min(wait, MAX_THROTTLE_WAIT))
                continue
            break
        self._raise_for(response, doing)
        return response

    def _raise_for(self, response: httpx.Response, doing: str) -> None:
        status = response.status_code
        if status < 400:
            return
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        code = error.get("code", "") if isinstance(error, dict) else ""
        said = f" ({code})" if code else ""
        if status == 401:
            raise InputError(f"{self.url}: Microsoft Graph weigert de aanmelding (401{said}); "
                             f"controleer {PREFIX}_TENANT, {PREFIX}_CLIENT_ID en het geheim.")
        if status == 403:
            raise InputError(f"{self.url}: geen rechten om de werkmap te {doing} (403{said}); "
                             "met Sites.Selected moet de beheerder de app rechten op deze site "
                             "geven (write). Er is niets verstuurd.")
        if status == 404:
            raise InputError(f"{self.url}: dit bestand bestaat niet in Microsoft 365 "
                             f"(404{said}); controleer de deellink of het adres.")
        if status == 423:
            raise WorkbookInUse(f"{self.url} is vergrendeld (423{said}); de volgende run "
                                "probeert het opnieuw.")
        raise InputError(f"{self.url}: Microsoft Graph antwoordt {status}{said} bij "
                         f"{doing}; er is niets gedaan.")


def _book(item: Item) -> str:
    return f"/drives/{item.drive}/items/{item.item}/workbook"


def _range(item: Item, sheet: str, address: str) -> str:
    name = quote(sheet.replace("'", "''"), safe="")
    return f"{_book(item)}/worksheets('{name}')/range(address='{address}')"


def excel_value(value: object) -> object:
    """A cell value as Graph's `values` take it: a date is its Excel serial number."""
    if isinstance(value, datetime):  # a day and its fraction, as Excel counts
        since = value - datetime.combine(EXCEL_EPOCH, datetime.min.time(), value.tzinfo)
        return round(since.total_seconds() / 86400, 10)
    if isinstance(value, date):
        return (value - EXCEL_EPOCH).days
    return "" if value is None else value
