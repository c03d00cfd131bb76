"""Channels carry a rendered message to its recipient: e-mail (SMTP), webhook (signed HTTP POST),
log (a file, for development and the demo).

A channel is a class with a ``name``, what it can carry (HTML, attachments), a JSON Schema for
its settings, and ``send(message) -> message id``. It raises :class:`ChannelError` when the
message cannot be delivered, saying whether trying again later may help. Plugins add channels
of the same shape.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import formataddr, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bookwise.config import MailSettings
from bookwise.db import utcnow

if TYPE_CHECKING:
    from bookwise.plugins.api import PluginContext


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # "text/calendar; method=REQUEST"
    data: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message for one recipient on one channel."""

    channel: str
    recipient: str
    text: str
    subject: str = ""
    html: str | None = None
    reply_to: str | None = None
    sender_name: str | None = None
    attachments: tuple[Attachment, ...] = ()
    event: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)  # the event as data, for webhooks
    # The outbox row's ``message_uid``: the same on every attempt of this message, so that a
    # receiver can drop a copy sent again after a crash (e-mail Message-ID, ``webhook-id``; a
    # plugin's channel passes it on where its service takes one). Empty outside the outbox.
    message_uid: str = ""


def message_id(message_uid: str, domain: str) -> str:
    """The Message-ID of the message ``message_uid``: stable across attempts, in the sender's
    ``domain`` (RFC 5322 ``<left@right>``)."""
    return f"<{message_uid}@{domain or 'localhost'}>"


class ChannelError(Exception):
    """The message was not delivered. ``temporary``: trying again later may succeed."""

    def __init__(self, message: str, temporary: bool = True) -> None:
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Message  # case-insensitive .get()
    body: bytes


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    service: str,
    error_detail: bool = False,
) -> HttpAnswer:
    """POST ``body`` to ``url`` for a channel; a refusal or an unreachable server is a
    :class:`ChannelError` naming ``service`` ("the webhook"): 5xx and 429 are temporary, other
    4xx permanent. ``error_detail`` adds the ``message`` of a JSON error body to the error."""
    # The address is the operator's own setting, checked to be http(s) by the settings schema.
    request = urllib.request.Request(  # noqa: S310
        url, data=body, headers={"User-Agent": "Bookwise", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return HttpAnswer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        detail = _json_message(exc) if error_detail else ""
        raise ChannelError(
            f"{service} answered {exc.code}{detail}",
            temporary=exc.code >= 500 or exc.code == 429,
        ) from None
    except (OSError, ValueError) as exc:
        raise ChannelError(f"{service} could not be reached: {exc}") from None


def _json_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message}" if message else ""


class Channel:
    """Base of every channel. Subclasses set ``name`` and implement :meth:`send`."""

    name: ClassVar[str] = ""
    # What the scenario editor shows for a plugin's channel ("Pager", "WhatsApp"); the core's
    # own and the common ones (e-mail, SMS, chat, webhook) are named by the editor itself.
    label: ClassVar[str] = ""
    supports_html: ClassVar[bool] = False
    supports_attachments: ClassVar[bool] = False
    settings_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    @classmethod
    def from_settings(cls, context: PluginContext) -> Channel:
        """Build the channel from its plugin's checked settings (``context.settings``, the
        mapping under ``plugins.<plugin>`` in config.yaml). The default passes them as keyword
        arguments to the class."""
        return cls(**context.settings)

    def open(self) -> None:
        """Prepare for a batch (a connection to reuse). The default does nothing."""

    def close(self) -> None:
        """End a batch."""

    def send(self, message: OutgoingMessage) -> str:
        """Deliver ``message``; return the provider's message id. Raise :class:`ChannelError`."""
        raise NotImplementedError


class EmailChannel(Channel):
    """SMTP with the instance's ``mail`` settings: STARTTLS or SSL, login, one connection reused
    across a batch, a plain-text and an HTML part, attachments, Reply-To."""

    name = "email"
    supports_html = True
    supports_attachments = True

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, context: PluginContext) -> Channel:
        """E-mail takes the instance's ``mail`` settings; with ``transport: log`` (development,
        the demo) e-mails are written to instance/messages.log instead of being sent."""
        mail = context.instance.mail
        if mail.transport == "log":
            return _LoggedEmail(context.instance_dir / "messages.log")
        return cls(mail)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            smtp: smtplib.SMTP
            if s.ssl:
                smtp = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
            if s.username:
                smtp.login(s.username, s.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError(
                f"the mail server refused the login: {exc.smtp_code}", temporary=False
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"cannot reach the mail server {s.host}:{s.port}: {exc}") from None
        return smtp

    def open(self) -> None:
        if self._smtp is None:
            self._smtp = self._connect()

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            self._smtp = None

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The e-mail itself (exposed for previews and tests)."""
        email = EmailMessage()
        sender_name, sender_address = parseaddr(self.settings.sender)
        email["From"] = formataddr((message.sender_name or sender_name, sender_address))
        email["To"] = message.recipient
        email["Subject"] = message.subject
        domain = sender_address.rpartition("@")[2]
        # Stable for an outbox row: a copy sent again after a crash is the same message to the
        # mail server and the recipient's client, which keep one.
        email["Message-ID"] = (
            message_id(message.message_uid, domain)
            if message.message_uid
            else make_msgid(domain=domain or None)
        )
        email["Date"] = utcnow()
        if message.reply_to:
            email["Reply-To"] = message.reply_to
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        for attachment in message.attachments:
            maintype, _, rest = attachment.content_type.partition("/")
            subtype, _, params = rest.partition(";")
            email.add_attachment(
                attachment.data,
                maintype=maintype,
                subtype=subtype.strip(),
                filename=attachment.filename,
                params=dict(p.strip().split("=", 1) for p in params.split(";") if "=" in p),
            )
        return email

    def send(self, message: OutgoingMessage) -> str:
        email = self.build(message)
        for attempt in (1, 2):
            self.open()
            assert self._smtp is not None
            try:
                self._smtp.send_message(email)
                return str(email["Message-ID"])
            except smtplib.SMTPServerDisconnected:
                self._smtp = None  # the reused connection was closed: connect again, once
                if attempt == 2:
                    raise ChannelError("the mail server closed the connection") from None
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                raise ChannelError(
                    f"the mail server refused the recipient: {codes}",
                    temporary=all(400 <= c < 500 for c in codes),
                ) from None
            except smtplib.SMTPResponseException as exc:
                raise ChannelError(
                    f"the mail server answered {exc.smtp_code}: {exc.smtp_error!r}",
                    temporary=exc.smtp_code < 500,
                ) from None
            except (OSError, smtplib.SMTPException) as exc:
                self._smtp = None
                raise ChannelError(f"sending failed: {exc}") from None
        raise ChannelError("sending failed")  # pragma: no cover - the loop returns or raises


class WebhookChannel(Channel):
    """An HTTP POST of the event as JSON, signed with HMAC-SHA256 in ``X-Bookwise-Signature``
    (``sha256=<hex of HMAC(secret, body)>``), with a timeout; ``webhook-id`` names the message,
    the same on every attempt."""

    name = "webhook"
    settings_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "pattern": "^https?://"},
            "secret": {"type": "string", "minLength": 16},
            "timeout": {"type": "number", "exclusiveMinimum": 0},
        },
    }

    def __init__(self, url: str, secret: str = "", timeout: float = 10) -> None:
        self.url, self.secret, self.timeout = url, secret, timeout

    def send(self, message: OutgoingMessage) -> str:
        body = json.dumps(
            {
                "event": message.event,
                "recipient": message.recipient,
                "subject": message.subject,
                "text": message.text,
                "data": dict(message.data),
            },
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if message.message_uid:
            # The same on every attempt of the message: a receiver that saw it drops the copy.
            headers["webhook-id"] = message.message_uid
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Bookwise-Signature"] = f"sha256={digest}"
        answer = post(self.url, body, headers, self.timeout, "the webhook")
        return answer.headers.get("X-Request-Id") or f"http-{answer.status}"


class LogChannel(Channel):
    """Writes each message as one JSON line to a file: for development and the demo."""

    name = "log"
    supports_html = True
    supports_attachments = True

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def from_settings(cls, context: PluginContext) -> Channel:
        return cls(context.instance_dir / "messages.log")

    def send(self, message: OutgoingMessage) -> str:
        identifier = (
            message_id(message.message_uid, "log.bookwise")
            if message.message_uid
            else make_msgid(domain="log.bookwise")
        )
        line = json.dumps(
            {
                "id": identifier,
                "at": utcnow().isoformat(),
                "channel": message.channel,
                "to": message.recipient,
                "subject": message.subject,
                "text": message.text,
                "attachments": [a.filename for a in message.attachments],
            },
            ensure_ascii=False,
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as exc:
            raise ChannelError(f"cannot write {self.path}: {exc.strerror}") from None
        return identifier


class _LoggedEmail(LogChannel):
    """E-mail written to the log file (``mail.transport: log``)."""

    name = "email"
