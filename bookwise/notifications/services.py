"""Templates in the database, text-message opt-outs, and a manual retry of a dead message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from bookwise.audit.services import Actor, record
from bookwise.db import utcnow
from bookwise.errors import BookwiseError, NotFound
from bookwise.notifications.models import (
    MessageTemplate,
    MessageTemplateVersion,
    Notification,
    SmsOptOut,
)
from bookwise.notifications.rendering import (
    TemplateParts,
    check_parts,
    file_template,
    read_template_file,
)
from bookwise.notifications.templates import SHIPPED_TEMPLATES


def seed_templates(session: Session, folders: Iterable[Path]) -> int:
    """Copy the template files into the database, where the back office edits them.

    A template never edited follows its file (an upgrade that improves a default reaches it); an
    edited one is left alone. Returns how many rows were added or refreshed.
    """
    existing = {
        (t.name, t.audience, t.channel, t.locale): t
        for t in session.scalars(
            select(MessageTemplate).where(MessageTemplate.calendar_id.is_(None))
        )
    }
    changed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*/*.yaml")):
            name, locale = path.parent.name, path.stem
            for audience, channels in (read_template_file(path) or {}).items():
                for channel, parts in (channels or {}).items():
                    key = (name, audience, channel, locale)
                    values = {
                        "subject": parts.get("subject"),
                        "body_text": parts.get("text", ""),
                        "body_html": parts.get("html"),
                    }
                    row = existing.get(key)
                    if row is None:
                        row = MessageTemplate(
                            name=name,
                            audience=audience,
                            channel=channel,
                            locale=locale,
                            is_default=True,
                            **values,
                        )
                        session.add(row)
                        existing[key] = row
                        changed += 1
                    elif row.is_default and any(getattr(row, k) != v for k, v in values.items()):
                        for attribute, value in values.items():
                            setattr(row, attribute, value)
                        changed += 1
    return changed


def record_stop(session: Session, phone: str, source: str | None = None) -> SmsOptOut:
    """A number replied STOP: no more text messages to it (also for messages already planned)."""
    existing = session.scalar(select(SmsOptOut).where(SmsOptOut.phone == phone))
    if existing is not None:
        return existing
    row = SmsOptOut(phone=phone, source=source, at=utcnow())
    session.add(row)
    session.flush()
    return row


def retry(session: Session, row_id: int, now: datetime) -> Notification:
    """Send a failed or dead message again, due ``now``."""
    row = session.get(Notification, row_id)
    if row is None:
        raise NotFound(f"no message {row_id}")
    if row.state not in ("dead", "failed"):
        raise BookwiseError(
            f"message {row_id} is {row.state}; only failed or dead ones are retried"
        )
    row.state, row.due_at, row.claimed_until = "pending", now, None
    return row


# --- the template editor ------------------------------------------------------------------------


class InvalidTemplate(BookwiseError):
    """A template that cannot be saved: each problem starts with its part (subject, text, html)."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class TemplateKey:
    name: str
    audience: str
    channel: str
    locale: str


@dataclass(frozen=True)
class EffectiveTemplate:
    """The wording in force for a calendar, and where it comes from: ``calendar`` (its own copy),
    ``instance`` (edited for every calendar) or ``default`` (the shipped text)."""

    parts: TemplateParts
    origin: str


def template_keys(session: Session) -> list[TemplateKey]:
    """Every template of the instance (the seeded rows), by name, audience, channel, language."""
    rows = session.execute(
        select(
            MessageTemplate.name,
            MessageTemplate.audience,
            MessageTemplate.channel,
            MessageTemplate.locale,
        )
        .where(MessageTemplate.calendar_id.is_(None))
        .order_by(
            MessageTemplate.name,
            MessageTemplate.audience,
            MessageTemplate.channel,
            MessageTemplate.locale,
        )
    )
    return [TemplateKey(*row) for row in rows]


def _row(session: Session, key: TemplateKey, calendar_id: int | None) -> MessageTemplate | None:
    return session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.name == key.name,
            MessageTemplate.audience == key.audience,
            MessageTemplate.channel == key.channel,
            MessageTemplate.locale == key.locale,
            MessageTemplate.calendar_id.is_(None)
            if calendar_id is None
            else MessageTemplate.calendar_id == calendar_id,
        )
    )


def _parts(row: MessageTemplate) -> TemplateParts:
    return TemplateParts(text=row.body_text, subject=row.subject, html=row.body_html)


def effective_template(
    session: Session, key: TemplateKey, calendar_id: int | None
) -> EffectiveTemplate | None:
    """The wording a calendar's messages use for ``key`` (None: no such template)."""
    if calendar_id is not None:
        own = _row(session, key, calendar_id)
        if own is not None:
            return EffectiveTemplate(_parts(own), "calendar")
    shared = _row(session, key, None)
    if shared is None:
        return None
    return EffectiveTemplate(_parts(shared), "default" if shared.is_default else "instance")


def template_origins(session: Session, calendar_id: int | None) -> dict[TemplateKey, str]:
    """Where each template's wording comes from for a calendar, in two queries."""
    origins = {}
    for row in session.scalars(
        select(MessageTemplate).where(MessageTemplate.calendar_id.is_(None))
    ):
        key = TemplateKey(row.name, row.audience, row.channel, row.locale)
        origins[key] = "default" if row.is_default else "instance"
    if calendar_id is not None:
        for row in session.scalars(
            select(MessageTemplate).where(MessageTemplate.calendar_id == calendar_id)
        ):
            origins[TemplateKey(row.name, row.audience, row.channel, row.locale)] = "calendar"
    return origins


def save_template(
    session: Session,
    key: TemplateKey,
    parts: TemplateParts,
    *,
    calendar_id: int | None,
    author: str,
    ip: str | None = None,
    comment: str | None = None,
    now: datetime | None = None,
) -> MessageTemplate:
    """Save an edited template for one calendar (or, ``calendar_id`` None, for the instance),
    after checking it renders: :class:`InvalidTemplate` otherwise, and nothing is written.

    The new wording becomes a version (see :func:`template_versions`), unless it is the latest
    version's already."""
    change = _Change("saved", author, comment, now or utcnow())
    row = _store(session, key, parts, calendar_id, change)[0]
    _audit(session, "template.saved", key, calendar_id, Actor(author, ip=ip))
    return row


def reset_template(
    session: Session,
    key: TemplateKey,
    *,
    calendar_id: int | None,
    folders: Sequence[Path],
    author: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> None:
    """Back to the default: a calendar's copy is dropped (the instance's wording applies again);
    the instance's edited wording gets the shipped text back. The wording that results becomes
    a version (action ``reset``)."""
    before = _in_force(session, key, calendar_id)
    if calendar_id is not None:
        own = _row(session, key, calendar_id)
        if own is not None:
            session.delete(own)
            session.flush()
    else:
        shared = _row(session, key, None)
        if shared is None:
            raise NotFound(f"no template {key.name}")
        parts = file_template(
            [*folders, SHIPPED_TEMPLATES], key.name, key.audience, key.channel, key.locale, "en"
        )
        if parts is None:
            raise NotFound(f"no default for template {key.name}")
        shared.subject, shared.body_text, shared.body_html = parts.subject, parts.text, parts.html
        shared.is_default = True
        shared.updated_by = author
    after = effective_template(session, key, calendar_id)
    if before is not None and after is not None:
        change = _Change("reset", author, None, now or utcnow())
        _record_version(session, key, calendar_id, before, after.parts, change)
    _audit(session, "template.reset", key, calendar_id, Actor(author, ip=ip))


# --- the template's versions --------------------------------------------------------------------


def template_versions(
    session: Session, key: TemplateKey, calendar_id: int | None
) -> list[MessageTemplateVersion]:
    """The versions of a calendar's copy of ``key`` (``calendar_id`` None: the instance's
    wording), newest first. Empty until its wording first changes."""
    return list(
        session.scalars(
            select(MessageTemplateVersion)
            .where(*_same_template(key, calendar_id))
            .order_by(MessageTemplateVersion.number.desc())
        )
    )


def template_version(
    session: Session, key: TemplateKey, calendar_id: int | None, number: int
) -> MessageTemplateVersion:
    """Version ``number`` of the template; :class:`NotFound` when there is none."""
    version = session.scalar(
        select(MessageTemplateVersion).where(
            *_same_template(key, calendar_id), MessageTemplateVersion.number == number
        )
    )
    if version is None:
        raise NotFound(f"no version {number} of template {key.name}")
    return version


def version_parts(version: MessageTemplateVersion) -> TemplateParts:
    """The wording a version holds."""
    return TemplateParts(text=version.body_text, subject=version.subject, html=version.body_html)


def restore_template_version(
    session: Session,
    key: TemplateKey,
    calendar_id: int | None,
    number: int,
    *,
    author: str,
    ip: str | None = None,
    comment: str | None = None,
    now: datetime | None = None,
) -> MessageTemplateVersion | None:
    """Save version ``number``'s wording again, checked as an edit is (:class:`InvalidTemplate`
    when it no longer renders, and nothing is written). Returns the new version (action
    ``restored``), or None when that wording is the latest version's already."""
    old = template_version(session, key, calendar_id, number)
    change = _Change("restored", author, comment, now or utcnow())
    added = _store(session, key, version_parts(old), calendar_id, change)[1]
    _audit(
        session,
        "template.restored",
        key,
        calendar_id,
        Actor(author, ip=ip),
        {"version": number, "new_version": None if added is None else added.number},
    )
    return added


@dataclass(frozen=True)
class _Change:
    """How, by whom and when a template's wording changes (what its version records)."""

    action: str  # default, saved, reset, restored
    author: str | None
    comment: str | None
    at: datetime


@dataclass(frozen=True)
class _Wording:
    """The wording in force before a change, with who set it and when."""

    parts: TemplateParts
    author: str | None
    at: datetime


def _in_force(session: Session, key: TemplateKey, calendar_id: int | None) -> _Wording | None:
    row = (_row(session, key, calendar_id) if calendar_id is not None else None) or _row(
        session, key, None
    )
    if row is None:
        return None
    return _Wording(_parts(row), row.updated_by, row.updated_at)


def _store(
    session: Session,
    key: TemplateKey,
    parts: TemplateParts,
    calendar_id: int | None,
    change: _Change,
) -> tuple[MessageTemplate, MessageTemplateVersion | None]:
    """Check and write the template's wording, and record its version."""
    shared = _row(session, key, None)
    if shared is None:
        raise NotFound(f"no template {key.name} for {key.audience} on {key.channel}")
    problems = check_parts(parts)
    if problems:
        raise InvalidTemplate(problems)
    before = _in_force(session, key, calendar_id)
    assert before is not None  # the shared row at least
    row = shared if calendar_id is None else _row(session, key, calendar_id)
    if row is None:
        row = MessageTemplate(
            name=key.name,
            audience=key.audience,
            channel=key.channel,
            locale=key.locale,
            calendar_id=calendar_id,
            body_text="",
        )
        session.add(row)
    row.subject = parts.subject
    row.body_text = parts.text
    row.body_html = parts.html
    row.is_default = False
    row.updated_by = change.author
    session.flush()
    return row, _record_version(session, key, calendar_id, before, parts, change)


def _record_version(
    session: Session,
    key: TemplateKey,
    calendar_id: int | None,
    before: _Wording,
    after: TemplateParts,
    change: _Change,
) -> MessageTemplateVersion | None:
    """A new version holding ``after``, unless the latest version holds it already. The first
    change of a template also records the wording it replaced, as version 1 (``default``)."""
    latest = session.scalar(
        select(func.max(MessageTemplateVersion.number)).where(*_same_template(key, calendar_id))
    )
    if latest is None:
        if before.parts == after:
            return None
        first = _Change("default", before.author, None, before.at)
        _add_version(session, key, calendar_id, 1, before.parts, first)
        latest = 1
    elif version_parts(template_version(session, key, calendar_id, latest)) == after:
        return None
    return _add_version(session, key, calendar_id, latest + 1, after, change)


def _add_version(
    session: Session,
    key: TemplateKey,
    calendar_id: int | None,
    number: int,
    parts: TemplateParts,
    change: _Change,
) -> MessageTemplateVersion:
    version = MessageTemplateVersion(
        calendar_id=calendar_id,
        name=key.name,
        audience=key.audience,
        channel=key.channel,
        locale=key.locale,
        number=number,
        subject=parts.subject,
        body_text=parts.text,
        body_html=parts.html,
        action=change.action,
        author=change.author,
        comment=change.comment or None,
        created_at=change.at,
    )
    session.add(version)
    session.flush()
    return version


def _same_template(key: TemplateKey, calendar_id: int | None) -> list[ColumnElement[bool]]:
    """The conditions naming one template's versions (the instance's, or one calendar's)."""
    return [
        MessageTemplateVersion.name == key.name,
        MessageTemplateVersion.audience == key.audience,
        MessageTemplateVersion.channel == key.channel,
        MessageTemplateVersion.locale == key.locale,
        MessageTemplateVersion.calendar_id.is_(None)
        if calendar_id is None
        else MessageTemplateVersion.calendar_id == calendar_id,
    ]


def _audit(
    session: Session,
    action: str,
    key: TemplateKey,
    calendar_id: int | None,
    actor: Actor,
    details: dict[str, Any] | None = None,
) -> None:
    record(
        session,
        action,
        actor,
        object_type="template",
        object_id=f"{key.name}/{key.audience}/{key.channel}/{key.locale}",
        calendar_id=calendar_id,
        details=details,
    )
