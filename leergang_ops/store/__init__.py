"""Where the workbook lives: a file on disk, or a web address on a WebDAV server (contract §1).

The core never knows: a remote workbook is fetched into a private working copy, the job runs
on that copy as on any file, and the copy goes back only if nobody saved meanwhile
(`remote.py` holds that session). This package is the edge that talks to servers.
"""

from __future__ import annotations

from urllib.parse import urlsplit

REMOTE_SCHEMES = ("https", "http")


def is_remote(text: str) -> bool:
    """True for a web address (`https://…`), which names a workbook on a server."""
    return urlsplit(text).scheme.lower() in REMOTE_SCHEMES and "://" in text
