"""Clients: a calendar admin looks up an e-mail address, sees what is held about it (counts),
downloads it as JSON and erases it after a confirmation step (bookwise.privacy.clients).

Only admins of the calendar (and superadmins, who may also act on every calendar at once) open
this page: a look-up alone tells whether someone booked here, and an export holds every answer,
sensitive ones included. Viewers and staff get 403, recorded. Every action is a POST with the
session's CSRF token, so that no address ends up in a URL, a browser history or a server log;
every export and erasure is audited (client ids, never the address).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, redirect, url_for
from flask_admin import expose
from flask_babel import lazy_gettext
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import DataRequired, Length

from bookwise.admin.base import AdminView, Form
from bookwise.calendars.models import Calendar
from bookwise.config import secret_key_of
from bookwise.db import begin_write
from bookwise.errors import BookwiseError
from bookwise.i18n import gettext
from bookwise.privacy.clients import (
    ClientNotFound,
    ClientSummary,
    InvalidEmail,
    erase_client,
    export_client,
    record_export,
    summarise_client,
)
from bookwise.web import instance, now, plugin_host


class ClientForm(Form):
    email = StringField(
        lazy_gettext("E-mail address"), validators=[DataRequired(), Length(max=320)]
    )
    everywhere = BooleanField(lazy_gettext("In every calendar"))
    confirmed = HiddenField()


class ClientsView(AdminView):
    """Look up, export and erase a client's data in the current calendar."""

    need = "admin"

    def _scope(self, form: ClientForm) -> Calendar | None:
        """The current calendar; None (every calendar) for a superadmin who asked for it."""
        if form.everywhere.data and self.access.superadmin:
            return None
        return self.calendar

    def _page(
        self,
        form: ClientForm,
        summary: ClientSummary | None = None,
        problem: str | None = None,
        confirm: bool = False,
        status: int = 200,
    ) -> tuple[str, int]:
        return self.render(
            "bookwise_admin/clients.html",
            form=form,
            summary=summary,
            problem=problem,
            confirm=confirm,
            superadmin=self.access.superadmin,
            calendar=self.calendar,
        ), status

    def _summary(self, form: ClientForm) -> tuple[ClientSummary | None, str | None]:
        try:
            return summarise_client(self.db, self._scope(form), form.email.data, now()), None
        except InvalidEmail:
            return None, gettext("This is not an e-mail address: write one like name@example.org.")
        except ClientNotFound:
            scope = self._scope(form)
            if scope is None:
                return None, gettext(
                    "No client with the address %(email)s in any calendar. Check its spelling; "
                    "capitals do not matter.",
                    email=form.email.data.strip(),
                )
            words = gettext(
                "No client with the address %(email)s in the calendar %(calendar)s. Check its "
                "spelling; capitals do not matter.",
                email=form.email.data.strip(),
                calendar=scope.name,
            )
            if self.access.superadmin:
                words += " " + gettext("To search the other calendars, tick “In every calendar”.")
            return None, words

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        form = ClientForm()
        if not form.is_submitted():
            return self._page(form)
        if not form.validate():
            return self._page(form, status=422)
        summary, problem = self._summary(form)
        return self._page(form, summary, problem, status=404 if problem else 200)

    @expose("/export", methods=("POST",))
    def export(self) -> Any:
        form = ClientForm()
        if not form.validate_on_submit():
            return self._page(form, status=422)
        scope = self._scope(form)
        try:
            data = export_client(self.db, scope, form.email.data, now())
        except (ClientNotFound, InvalidEmail):
            summary, problem = self._summary(form)
            return self._page(form, summary, problem, status=404)
        record_export(self.db, data, self.actor)
        self.db.commit()
        name = f"client-data-{scope.slug if scope is not None else 'all-calendars'}.json"
        return Response(
            json.dumps(data, ensure_ascii=False, indent=2),
            mimetype="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )

    @expose("/erase", methods=("POST",))
    def erase(self) -> Any:
        form = ClientForm()
        if not form.validate_on_submit():
            return self._page(form, status=422)
        summary, problem = self._summary(form)
        if summary is None:
            return self._page(form, None, problem, status=404)
        if form.confirmed.data != "yes":
            return self._page(form, summary, confirm=True)
        session = self.db
        session.rollback()
        begin_write(session)  # cancelling bookings: the booking services need a writer
        try:
            report = erase_client(
                session,
                self._scope(form),
                form.email.data,
                self.actor,
                now(),
                secret=secret_key_of(instance().settings),
                plugins=plugin_host(),
            )
        except BookwiseError as refused:  # erased meanwhile, or a booking that could not move
            self.fail(refused)
            return redirect(url_for(".index"))
        self.commit(
            gettext(
                "Erased: %(clients)s client record(s), %(bookings)s booking(s) kept as anonymous "
                "counts, %(cancelled)s cancelled. They now show as %(names)s.",
                clients=len(report.clients),
                bookings=report.bookings,
                cancelled=report.cancelled,
                names=", ".join(report.subjects),
            )
        )
        return redirect(url_for(".index"))
