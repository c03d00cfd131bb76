"""The current calendar's outbound webhooks (issue 19): its admins add an endpoint (URL, the
booking events it wants, active or paused, a description), see its secret once when it is made or
rotated, read its recent deliveries and send it a test event. See docs/api.md, Webhooks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import redirect, url_for
from flask_admin import expose
from flask_babel import get_locale, lazy_gettext
from wtforms import BooleanField, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from bookwise.admin.base import ActionForm, AdminView, Form, options
from bookwise.db import begin_write
from bookwise.formatting import format_when
from bookwise.i18n import gettext
from bookwise.notifications.models import Notification, WebhookEndpoint
from bookwise.notifications.webhooks import (
    EVENTS,
    ROTATION_OVERLAP,
    WebhookProblem,
    check_url,
    create_endpoint,
    delete_endpoint,
    deliveries,
    plan_test,
    rotate,
)
from bookwise.text import unstorable_text
from bookwise.web import now


def problem_words(code: str) -> str:
    """What the admin reads for a refused setting."""
    return {
        "url_missing": gettext("Give the address the events are sent to."),
        "url_too_long": gettext("The address is too long (2000 characters at most)."),
        "url_characters": gettext(
            "The address may hold only printable ASCII characters: write a name in another "
            "script in its ASCII form (punycode, percent-encoding)."
        ),
        "url_invalid": gettext("This is not a valid address."),
        "url_scheme": gettext(
            "The address must start with https:// (http:// only for 127.0.0.1 or localhost, "
            "for tests and development)."
        ),
        "url_credentials": gettext(
            "The address must not hold a user name or password: the signature proves the "
            "events are ours."
        ),
        "events_missing": gettext("Choose at least one event."),
        "events_unknown": gettext("Choose events from the list."),
        "description_characters": gettext(
            "The description contains a character that cannot be stored; type it again without it."
        ),
        "overlap": gettext("The previous secret may stay valid for 0 to 168 hours."),
    }.get(code, code)


def _check_url(_form: Any, field: Any) -> None:
    try:
        field.data = check_url(field.data or "")
    except WebhookProblem as refused:
        raise ValidationError(problem_words(refused.code)) from None


def _storable(_form: Any, field: Any) -> None:
    problem = unstorable_text(field.data or "", multiline=True)
    if problem is not None:
        raise ValidationError(problem.translate(gettext))


class EndpointForm(Form):
    url = StringField(
        lazy_gettext("Address (URL)"), validators=[InputRequired(), Length(max=2000), _check_url]
    )
    events = SelectMultipleField(
        lazy_gettext("Events sent to it"),
        choices=options(EVENTS),
        validators=[InputRequired(message=lazy_gettext("Choose at least one event."))],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    description = TextAreaField(
        lazy_gettext("Description"), validators=[Length(max=500), _storable]
    )
    active = BooleanField(lazy_gettext("Active (unchecked: paused, nothing is sent)"), default=True)


class RotateForm(Form):
    overlap = IntegerField(
        lazy_gettext("Hours the previous secret stays valid"),
        default=int(ROTATION_OVERLAP.total_seconds() // 3600),
        validators=[
            InputRequired(),
            NumberRange(
                min=0,
                max=168,
                message=lazy_gettext("The previous secret may stay valid for 0 to 168 hours."),
            ),
        ],
    )


def state_words(row: Notification) -> str:
    return {
        "pending": gettext("Waiting to be sent"),
        "sending": gettext("Being sent"),
        "sent": gettext("Delivered"),
        "failed": gettext("Failed, will be tried again"),
        "dead": gettext("Given up"),
        "skipped": gettext("Not sent"),
    }.get(row.state, row.state)


class WebhooksView(AdminView):
    """The current calendar's webhook endpoints: for its admins."""

    need = "admin"

    def _endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        return self.owned(
            self.db.get(WebhookEndpoint, endpoint_id),
            lambda e: e.calendar_id,
            "admin",
            "webhook endpoint",
        )

    def _for_action(self, endpoint_id: int) -> WebhookEndpoint | None:
        """The endpoint a button acts on, read again in a write transaction (None: the form
        was not valid, nothing to do)."""
        self._endpoint(endpoint_id)
        if not ActionForm().validate_on_submit():
            return None
        self.db.rollback()
        begin_write(self.db)
        return self._endpoint(endpoint_id)

    def _when(self, moment: datetime | None) -> str:
        if moment is None:
            return ""
        return format_when(moment, self.calendar.timezone, str(get_locale()))

    @expose("/")
    def index(self) -> str:
        return self._index(EndpointForm())

    def _index(self, form: EndpointForm, secret: str | None = None) -> str:
        calendar = self.calendar
        endpoints = self.db.query(WebhookEndpoint).filter_by(calendar_id=calendar.id)
        return self.render(
            "bookwise_admin/webhooks.html",
            endpoints=endpoints.order_by(WebhookEndpoint.id).all(),
            form=form,
            secret=secret,
        )

    @expose("/new", methods=("POST",))
    def create(self) -> Any:
        form = EndpointForm()
        if not form.validate_on_submit():
            return self._index(form)
        calendar_id = self.calendar.id
        self.db.rollback()
        begin_write(self.db)
        try:
            endpoint, secret = create_endpoint(
                self.db,
                calendar_id,
                form.url.data,
                form.events.data or [],
                form.description.data or "",
                bool(form.active.data),
            )
        except WebhookProblem as refused:
            self.fail(problem_words(refused.code))
            return self._index(form)
        self.audit(
            "webhook.created",
            object_type="webhook_endpoint",
            object_id=endpoint.id,
            calendar_id=calendar_id,
            details={"url": endpoint.url, "events": endpoint.events},
        )
        self.commit(gettext("Endpoint added. Copy its secret now: it is not shown again."))
        return self._details(endpoint.id, secret=secret)

    @expose("/<int:endpoint_id>/")
    def details(self, endpoint_id: int) -> str:
        return self._details(endpoint_id)

    def _details(
        self,
        endpoint_id: int,
        form: EndpointForm | None = None,
        rotate_form: RotateForm | None = None,
        secret: str | None = None,
    ) -> str:
        endpoint = self._endpoint(endpoint_id)
        if form is None:
            form = EndpointForm(obj=endpoint)
        log = [
            {
                "when": self._when(row.sent_at or row.updated_at or row.created_at),
                "event": row.event,
                "state": state_words(row),
                "attempts": row.attempts,
                "answer": row.provider_message_id or "",
                "error": row.last_error or "",
                "next": self._when(row.due_at) if row.state in ("pending", "failed") else "",
                "id": row.message_uid,
            }
            for row in deliveries(self.db, endpoint.id)
        ]
        until = (endpoint.secrets or {}).get("previous_until")
        return self.render(
            "bookwise_admin/webhook.html",
            endpoint=endpoint,
            form=form,
            rotate_form=rotate_form or RotateForm(),
            action_form=ActionForm(),
            log=log,
            secret=secret,
            previous_until=self._when(datetime.fromisoformat(until))
            if until and (endpoint.secrets or {}).get("previous")
            else "",
        )

    @expose("/<int:endpoint_id>/edit", methods=("POST",))
    def edit(self, endpoint_id: int) -> Any:
        endpoint = self._endpoint(endpoint_id)
        form = EndpointForm()
        if not form.validate_on_submit():
            return self._details(endpoint.id, form=form)
        self.db.rollback()
        begin_write(self.db)
        endpoint = self._endpoint(endpoint_id)
        endpoint.url = form.url.data
        endpoint.events = list(dict.fromkeys(form.events.data or []))
        endpoint.description = (form.description.data or "").strip()
        endpoint.active = bool(form.active.data)
        self.audit(
            "webhook.changed",
            object_type="webhook_endpoint",
            object_id=endpoint.id,
            calendar_id=endpoint.calendar_id,
            details={"url": endpoint.url, "events": endpoint.events, "active": endpoint.active},
        )
        self.commit(gettext("Endpoint saved."))
        return redirect(url_for(".details", endpoint_id=endpoint.id))

    @expose("/<int:endpoint_id>/rotate", methods=("POST",))
    def rotate_secret(self, endpoint_id: int) -> Any:
        self._endpoint(endpoint_id)
        form = RotateForm()
        if not form.validate_on_submit():
            return self._details(endpoint_id, rotate_form=form)
        self.db.rollback()
        begin_write(self.db)
        endpoint = self._endpoint(endpoint_id)
        secret = rotate(endpoint, now(), timedelta(hours=form.overlap.data or 0))
        self.audit(
            "webhook.secret_rotated",
            object_type="webhook_endpoint",
            object_id=endpoint.id,
            calendar_id=endpoint.calendar_id,
            details={"overlap_hours": form.overlap.data},
        )
        self.commit(gettext("New secret made. Copy it now: it is not shown again."))
        return self._details(endpoint.id, secret=secret)

    @expose("/<int:endpoint_id>/test", methods=("POST",))
    def send_test(self, endpoint_id: int) -> Any:
        endpoint = self._for_action(endpoint_id)
        if endpoint is None:
            return redirect(url_for(".details", endpoint_id=endpoint_id))
        plan_test(self.db, endpoint, now())
        self.commit(gettext("A test event is on its way; its delivery shows below."))
        return redirect(url_for(".details", endpoint_id=endpoint.id))

    @expose("/<int:endpoint_id>/delete", methods=("POST",))
    def delete(self, endpoint_id: int) -> Any:
        endpoint = self._for_action(endpoint_id)
        if endpoint is None:
            return redirect(url_for(".details", endpoint_id=endpoint_id))
        self.audit(
            "webhook.deleted",
            object_type="webhook_endpoint",
            object_id=endpoint.id,
            calendar_id=endpoint.calendar_id,
            details={"url": endpoint.url},
        )
        delete_endpoint(self.db, endpoint)
        self.commit(gettext("Endpoint deleted: it gets nothing more."))
        return redirect(url_for(".index"))
