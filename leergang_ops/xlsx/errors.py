"""What can go wrong patching a workbook; each message says it in Dutch, for the user."""

from __future__ import annotations


class XlsxError(Exception):
    """The workbook cannot be patched as asked; nothing was written."""


class WorkbookMissing(XlsxError):
    """There is no file at the path."""


class NotAWorkbook(XlsxError):
    """The file is no .xlsx package (not a zip, encrypted, an old .xls, no workbook part)."""


class SheetNotFound(XlsxError):
    """The workbook has no worksheet by that name (or the name is a chartsheet)."""


class DamagedWorkbook(XlsxError):
    """A part of the package cannot be read: a bad zip member, truncated or invalid XML."""


class Unsupported(XlsxError):
    """The write would break something the patcher cannot carry along (arrays, encodings)."""


class FileInUse(XlsxError):
    """The file is open in a spreadsheet program or changed meanwhile; try again later."""


class VerificationFailed(XlsxError):
    """The patched file did not read back as written; the original is left as it was."""
