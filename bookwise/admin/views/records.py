"""Read-mostly lists of the back office: the outbox (with a manual retry) and the audit log."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from flask import redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale, lazy_gettext
from sqlalchemy import Select, func, or_, select
from werkzeug.wrappers import Response
from wtforms import DateField, SelectField, StringField
from wtforms import Form as PlainForm
from wtforms.validators import Length, Optional

from bookwise.accounts.views import local_path
from bookwise.admin.access import deny
from bookwise.admin.base import ActionForm, AdminView, options
from bookwise.admin.display import message_words, outbox_state_name
from bookwise.admin.paging import paginate
from bookwise.audit.models import AuditEntry
from bookwise.availability.services import local_day_bounds
from bookwise.errors import BookwiseError
from bookwise.formatting import format_when
from bookwise.i18n import gettext
from bookwise.notifications.models import OUTBOX_STATES, Notification
from bookwise.notifications.services import retry
from bookwise.web import now

PER_PAGE = 50


class OutboxFilters(PlainForm):  # type: ignore[misc]
    state = SelectField(lazy_gettext("State"), validate_choice=False, default="")
    channel = SelectField(lazy_gettext("Channel"), validate_choice=False, default="")
    q = StringField(lazy_gettext("Recipient"), validators=[Length(max=100)])


def _state_names() -> dict[str, str]:
    return {state: outbox_state_name(state) for state in OUTBOX_STATES}


class OutboxView(AdminView):
    """Every message of the calendar: its state, error and attempts; retry what was given up."""

    need = "admin"

    @expose("/")
    def index(self) -> str:
        calendar = self.calendar
        locale = str(get_locale())
        names = _state_names()
        filters = OutboxFilters(request.args)
        filters.state.choices = options(
            [("", gettext("All")), *((s, names[s]) for s in OUTBOX_STATES)]
        )
        channels = self.db.scalars(
            select(Notification.channel)
            .where(Notification.calendar_id == calendar.id)
            .distinct()
            .order_by(Notification.channel)
        ).all()
        filters.channel.choices = options([("", gettext("All")), *((c, c) for c in channels)])
        filters.validate()
        query: Select[Notification] = select(Notification).where(
            Notification.calendar_id == calendar.id
        )
        if filters.state.data in OUTBOX_STATES:
            query = query.where(Notification.state == filters.state.data)
        if filters.channel.data:
            query = query.where(Notification.channel == filters.channel.data)
        needle = (filters.q.data or "").strip().lower()
        if needle and not filters.q.errors:
            query = query.where(func.lower(Notification.recipient).like(f"%{needle}%"))
        page = paginate(
            self.db,
            query.order_by(Notification.due_at.desc(), Notification.id.desc()),
            request.args,
            PER_PAGE,
        )
        counts: dict[str, int] = dict(
            self.db.execute(
                select(Notification.state, func.count())
                .where(Notification.calendar_id == calendar.id)
                .group_by(Notification.state)
            ).all()
        )
        zone = calendar.timezone
        return self.render(
            "bookwise_admin/outbox.html",
            filters=filters,
            page=page,
            rows=[
                {
                    "row": m,
                    **message_words(m),
                    "due": format_when(m.due_at, zone, locale),
                    "sent": format_when(m.sent_at, zone, locale) if m.sent_at else "",
                }
                for m in page.items
            ],
            counts=[(names[s], s, counts.get(s, 0)) for s in OUTBOX_STATES if counts.get(s)],
            form=ActionForm(),
        )

    @expose("/<int:message_id>/retry", methods=("POST",))
    def retry(self, message_id: int) -> Response:
        message = self.db.get(Notification, message_id)
        if message is None or not self.access.allows(message.calendar_id, "admin"):
            deny(self.access, "retry message", message.calendar_id if message else None)
        if not ActionForm().validate_on_submit():
            deny(self.access, "retry message without a valid form", message.calendar_id)
        try:
            retry(self.db, message_id, now())
        except BookwiseError:
            self.fail(gettext("Only failed or undelivered messages can be sent again."))
        else:
            self.audit(
                "message.retry",
                object_type="message",
                object_id=message_id,
                calendar_id=message.calendar_id,
            )
            self.commit(gettext("The message will be sent again in a moment."))
        back = request.form.get("back", "")
        return redirect(back if local_path(back) else url_for(".index"))


class AuditFilters(PlainForm):  # type: ignore[misc]
    start = DateField(lazy_gettext("From"), validators=[Optional()])
    end = DateField(lazy_gettext("To"), validators=[Optional()])
    action = SelectField(lazy_gettext("Action"), validate_choice=False, default="")
    actor = StringField(lazy_gettext("Who"), validators=[Length(max=100)])
    scope = SelectField(lazy_gettext("Scope"), validate_choice=False, default="")


class AuditView(AdminView):
    """Who changed what, and when: every write of the back office and the CLI, every refused
    attempt, every reading of sensitive answers."""

    need = "admin"

    @expose("/")
    def index(self) -> str:
        calendar = self.calendar
        access = self.access
        locale = str(get_locale())
        zone = ZoneInfo(calendar.timezone)
        filters = AuditFilters(request.args)
        instance_wide = access.superadmin and request.args.get("scope") == "instance"
        scope_clause = (
            AuditEntry.calendar_id.is_(None)
            if instance_wide
            else AuditEntry.calendar_id == calendar.id
        )
        actions = self.db.scalars(
            select(AuditEntry.action).where(scope_clause).distinct().order_by(AuditEntry.action)
        ).all()
        filters.action.choices = options([("", gettext("All")), *((a, a) for a in actions)])
        filters.scope.choices = options([("", calendar.name)])
        if access.superadmin:
            filters.scope.choices.append(("instance", gettext("Whole instance")))
        filters.validate()
        query: Select[AuditEntry] = select(AuditEntry).where(scope_clause)
        first: date | None = filters.start.data if not filters.start.errors else None
        last: date | None = filters.end.data if not filters.end.errors else None
        if first is not None:
            query = query.where(AuditEntry.at >= local_day_bounds(first, first, zone)[0])
        if last is not None:
            query = query.where(AuditEntry.at < local_day_bounds(last, last, zone)[1])
        if filters.action.data:
            query = query.where(AuditEntry.action == filters.action.data)
        needle = (filters.actor.data or "").strip().lower()
        if needle and not filters.actor.errors:
            query = query.where(
                or_(
                    func.lower(AuditEntry.actor).like(f"%{needle}%"),
                    func.lower(AuditEntry.object_id).like(f"%{needle}%"),
                )
            )
        page = paginate(
            self.db,
            query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()),
            request.args,
            PER_PAGE,
        )
        return self.render(
            "bookwise_admin/audit.html",
            filters=filters,
            page=page,
            rows=[
                {
                    "entry": e,
                    "at": format_when(e.at, calendar.timezone, locale),
                    "details": _details(e.details),
                }
                for e in page.items
            ],
        )


def _details(details: dict[str, Any] | None) -> str:
    if not details:
        return ""
    return ", ".join(f"{key}: {value}" for key, value in sorted(details.items()))[:400]
