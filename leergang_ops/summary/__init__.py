"""The weekly summary workbook for the contact person (contract §3 `overzicht`, §4 `summary`).

Built fresh from the course, its allocation and the send ledger; it never reads or touches the
organisers' workbook. Sheets, headers and texts are Dutch. Every text that came from a person
(names, municipalities, remarks, server replies) is written as a string cell, never as a
formula, so a registration named `=HYPERLINK(...)` cannot run anything in Excel.

`gemeenten` in the headline counts municipalities with at least one *confirmed* participant:
that is what the contact person plans rooms and groups around.
"""

from leergang_ops.summary.attention import GROUPS, Problem, grouped, problems
from leergang_ops.summary.figures import in_outbox
from leergang_ops.summary.headline import Headline, headline
from leergang_ops.summary.workbook import build_summary, describe_scope, write_summary

__all__ = ["GROUPS", "Headline", "Problem", "build_summary", "describe_scope", "grouped",
           "headline", "in_outbox", "problems", "write_summary"]
