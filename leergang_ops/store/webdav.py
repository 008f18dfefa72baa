"""A workbook on a WebDAV server (RFC 4918): Nextcloud, ownCloud, SURFdrive, any DAV share.

What is used, and how the servers answer (Nextcloud's and ownCloud's WebDAV documentation,
RFC 4918, RFC 7232):

- `PROPFIND` (Depth: 0) for the ETag, the locks (`DAV:lockdiscovery`; Collabora and
  OnlyOffice hold one while a document is open in the browser) and, on Nextcloud/ownCloud,
  `oc:permissions` (`W` = may write the file). 207 Multi-Status; 404 no such file; 401 login
  refused; 405/501 or a plain 200 page: not a WebDAV address.
- `GET` for the content, with its `ETag`.
- `PUT` with `If-Match: <etag>`: 201/204 done; 412 Precondition Failed when somebody saved
  meanwhile (the ETag moved on); 423 Locked when a lock appeared; 403 no right to write;
  507 Insufficient Storage when the quota is full.

httpx does the HTTP (connection reuse, timeouts, TLS with the system's or `SSL_CERT_FILE`'s
certificates); credentials are an app password from the environment, sent as Basic auth over
TLS only (plain http only to a loopback address, for tests and a local server).
"""

from __future__ import annotations

import ipaddress
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx

from leergang_ops.errors import InputError, WorkbookInUse

log = logging.getLogger(__name__)

PREFIX = "LEERGANG_WEBDAV"
WEAK_ETAG_RETRIES = 3
WEAK_ETAG_PAUSE = 1.1  # seconds: Apache's weak mark lasts for the second the file changed
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DAV = "{DAV:}"
OC = "{http://owncloud.org/ns}"
PROPFIND_BODY = (b'<?xml version="1.0" encoding="utf-8"?>'
                 b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
                 b"<d:getetag/><d:lockdiscovery/><d:resourcetype/><oc:permissions/>"
                 b"</d:prop></d:propfind>")


@dataclass(frozen=True)
class Props:
    """What PROPFIND says about the file."""

    etag: str | None
    locked_by: str | None  # the owner of an active lock ("" when the lock names none)
    may_write: bool | None  # None: the server does not say (only Nextcloud/ownCloud do)


@dataclass(frozen=True)
class Fetched:
    content: bytes
    etag: str


class WebDav:
    """One workbook on a WebDAV server; every error is a Dutch message naming the address."""

    def __init__(self, url: str, env: Mapping[str, str]) -> None:
        self.url = _checked_url(url)
        user = env.get(f"{PREFIX}_USER", "").strip()
        password = env.get(f"{PREFIX}_PASSWORD", "")
        if not user or not password:
            raise InputError(f"{self.url}: stel {PREFIX}_USER en {PREFIX}_PASSWORD in (een "
                             "app-wachtwoord, geen gewoon wachtwoord) om de werkmap op de "
                             "server te lezen.")
        self.user = user
        self._client = httpx.Client(auth=httpx.BasicAuth(user, password), timeout=TIMEOUT,
                                    follow_redirects=False,
                                    headers={"User-Agent": "leergang-ops"})

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> WebDav:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def name_of(url: str) -> str:
        """The file's name, as the last part of its address."""
        return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) or "werkmap.xlsx"

    def props(self) -> Props:
        response = self._request("PROPFIND", content=PROPFIND_BODY,
                                 headers={"Depth": "0",
                                          "Content-Type": "application/xml; charset=utf-8"})
        if response.status_code in (405, 501) or (response.status_code == 200
                                                  and b"multistatus" not in response.content):
            raise InputError(f"{self.url}: dit adres is geen WebDAV-adres (de server antwoordt "
                             f"{response.status_code} op PROPFIND). Gebruik het WebDAV-adres "
                             "van het bestand, bij Nextcloud …/remote.php/dav/files/GEBRUIKER/"
                             "map/bestand.xlsx.")
        self._raise_for(response, "lezen")
        return _parse_props(response.content)

    def fetch(self) -> Fetched:
        """The content and its strong ETag.

        Apache's mod_dav marks the ETag of a file changed within the last second weak
        (`W/"…"`), and `If-Match` compares strongly (RFC 7232 §3.1): an upload against a weak
        ETag would always fail as if somebody had saved. Such a file is fetched again a
        moment later, when its ETag is strong.
        """
        for _ in range(WEAK_ETAG_RETRIES):
            response = self._request("GET")
            self._raise_for(response, "lezen")
            etag = response.headers.get("ETag")
            if not etag or not etag.startswith("W/"):
                break
            time.sleep(WEAK_ETAG_PAUSE)
        if etag and etag.startswith("W/"):
            raise InputError(f"{self.url}: de server geeft alleen een zwakke ETag ({etag}), "
                             "waarmee niet veilig kan worden teruggeschreven; er is niets "
                             "gedaan.")
        if not etag:
            raise InputError(f"{self.url}: de server geeft geen ETag mee, zodat niet veilig kan "
                             "worden teruggeschreven zonder andermans wijzigingen te "
                             "overschrijven; er is niets gedaan.")
        if not response.content.startswith(b"PK"):
            raise InputError(f"{self.url}: dit is geen Excel-werkmap (.xlsx); er is niets "
                             "gedaan.")
        return Fetched(response.content, etag)

    def put(self, content: bytes, etag: str) -> str | None:
        """Upload `content` if the file still has `etag`; its new ETag ("" when the server
        sends none: nothing needs it, the next run fetches afresh), or None on 412."""
        response = self._request("PUT", content=content, headers={
            "If-Match": etag,
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
        if response.status_code == 412:
            return None
        if response.status_code == 423:
            raise WorkbookInUse(f"{self.url} is vergrendeld (423 Locked) terwijl de run liep; "
                                "de verstuurde mails staan in het verzendlogboek, de volgende "
                                "run schrijft de kolommen.")
        self._raise_for(response, "schrijven")
        return response.headers.get("ETag", "")

    def create(self, content: bytes) -> None:
        """Upload a new file; refused when one exists already (`If-None-Match: *`)."""
        response = self._request("PUT", content=content, headers={
            "If-None-Match": "*",
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
        if response.status_code == 412:
            raise InputError(f"{self.url} bestaat al; init overschrijft geen werkmap.")
        if response.status_code == 409:
            raise InputError(f"{self.url}: de map op de server bestaat niet (409); maak die "
                             "eerst aan.")
        self._raise_for(response, "schrijven")

    def _request(self, method: str, **kwargs: object) -> httpx.Response:
        try:
            return self._client.request(method, self.url, **kwargs)  # type: ignore[arg-type]
        except httpx.TimeoutException as err:
            raise InputError(f"{self.url}: de server antwoordt niet op tijd ({err}); "
                             "controleer het adres en de verbinding.") from err
        except httpx.ConnectError as err:
            if "CERTIFICATE_VERIFY_FAILED" in str(err):
                raise InputError(
                    f"{self.url}: het certificaat van de server wordt niet vertrouwd ({err}); "
                    "gebruik het adres dat op het certificaat staat, of zet een eigen CA in "
                    "SSL_CERT_FILE.") from err
            raise InputError(f"{self.url}: de server is niet bereikbaar "
                             f"({type(err).__name__}: {err}); controleer het adres en de "
                             "verbinding.") from err
        except httpx.HTTPError as err:
            raise InputError(f"{self.url}: de server is niet bereikbaar "
                             f"({type(err).__name__}: {err}); controleer het adres en de "
                             "verbinding.") from err

    def _raise_for(self, response: httpx.Response, doing: str) -> None:
        status = response.status_code
        if status < 300 or status == 207:
            return
        if status == 401:
            raise InputError(f"{self.url}: inloggen geweigerd (401) voor {self.user}; "
                             f"controleer {PREFIX}_USER en het app-wachtwoord in "
                             f"{PREFIX}_PASSWORD.")
        if status == 403:
            raise InputError(f"{self.url}: geen rechten om de werkmap te {doing} (403) voor "
                             f"{self.user}; vraag de eigenaar het bestand met bewerkrechten "
                             "te delen.")
        if status == 404:
            raise InputError(f"{self.url}: dit bestand bestaat niet op de server (404); "
                             "controleer het adres (hoofdletters, spaties als %20).")
        if status in (301, 302, 307, 308):
            raise InputError(f"{self.url}: de server stuurt door naar "
                             f"{response.headers.get('Location', '?')} ({status}); gebruik "
                             "dat adres.")
        if status == 507:
            raise InputError(f"{self.url}: de opslag op de server is vol (507); er is niets "
                             "teruggeschreven.")
        raise InputError(f"{self.url}: de server antwoordt {status} "
                         f"{response.reason_phrase} bij {doing}; er is niets gedaan.")


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        # Never print a secret: refuse it before any message could repeat the address.
        raise InputError("Zet geen gebruikersnaam of wachtwoord in het adres van de werkmap; "
                         f"gebruik {PREFIX}_USER en {PREFIX}_PASSWORD.")
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        raise InputError(f"{url}: gebruik https; alleen een server op deze computer "
                         "(127.0.0.1, localhost) mag over http.")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_props(body: bytes) -> Props:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        raise InputError(f"de server gaf een onleesbaar WebDAV-antwoord ({err})") from err
    # Servers answer the found properties in a 200 propstat and the others in a 404 one
    # (Nextcloud/SabreDAV); some split the found ones over several: read them all.
    found = [p.find(f"{DAV}prop") for p in root.iter(f"{DAV}propstat")
             if (p.findtext(f"{DAV}status") or "").split()[1:2] == ["200"]]
    props = [p for p in found if p is not None]
    if not props:
        return Props(None, None, None)
    prop = ET.Element(f"{DAV}prop")
    for part in props:
        prop.extend(list(part))
    etag = prop.findtext(f"{DAV}getetag")
    locked_by = None
    for lock in prop.iter(f"{DAV}activelock"):
        owner = lock.find(f"{DAV}owner")
        text = " ".join("".join(owner.itertext()).split()) if owner is not None else ""
        locked_by = text
        break
    permissions = prop.findtext(f"{OC}permissions")
    may_write = None if permissions is None else "W" in permissions
    return Props(etag, locked_by, may_write)
