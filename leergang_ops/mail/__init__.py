"""Mails: render an intent into a message (templates, Dutch dates, .ics) and deliver it.

`render` itself is imported from `leergang_ops.mail.render`: re-exporting the function here
would shadow the module of the same name (`import leergang_ops.mail.render` would then
give the function, and monkeypatching the module by name would break).
"""

from leergang_ops.mail.ics import calendar_for, meeting_uid
from leergang_ops.mail.render import (
    Attachment,
    Mail,
    Templates,
    message_id,
    to_bytes,
)
from leergang_ops.mail.transport import (
    DeliveryFault,
    FaultKind,
    Outbox,
    SmtpConfig,
    SmtpTransport,
    classify,
    open_transport,
)

__all__ = [
    "Attachment",
    "DeliveryFault",
    "FaultKind",
    "Mail",
    "Outbox",
    "SmtpConfig",
    "SmtpTransport",
    "Templates",
    "calendar_for",
    "classify",
    "meeting_uid",
    "message_id",
    "open_transport",
    "to_bytes",
]
