"""One exception tree; only the CLI maps it to exit statuses (contract §4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leergang_ops.model import Finding


class LeergangError(Exception):
    """Base of every error this package raises on purpose."""

    exit_status = 2
    # Something the organisers can fix (the workbook, a template, the sender address): a
    # scheduled run that stops on it tells the contact person (contract §3, `storing`).
    for_organisers = False


class InputError(LeergangError):
    """Bad input or configuration: nothing is written, nothing is sent (exit 2)."""

    exit_status = 2

    def __init__(self, message: str, findings: Sequence[Finding] = ()) -> None:
        super().__init__(message)
        self.findings = tuple(findings)


class EnvironmentFault(LeergangError):
    """The machine prevents the job: no permission, a full or read-only disk, a damaged
    ledger (exit 2). What was sent stays recorded; a rerun after the fix duplicates nothing."""

    exit_status = 2


class WorkbookInUse(LeergangError):
    """The workbook is open in a spreadsheet program or another run holds it (exit 3)."""

    exit_status = 3


class DeliveryError(LeergangError):
    """Some mails could not be delivered; they are reported and retried (exit 1)."""

    exit_status = 1
