"""What every back-office view shares: sign-in, the calendar it works on, rights, audit, forms.

Views are Flask-Admin views over the same services the pages and the API use; they never write
rows the services would have refused. Each view declares what it needs on the current calendar
(``need``) or that it is for superadmins; a signed-out visitor is sent to the sign-in page and a
signed-in user without the right gets a 403 that the audit log records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

from flask import flash, redirect, request, url_for
from flask_admin import BaseView
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from bookwise.admin.access import (
    Access,
    Need,
    check,
    choose_calendar,
    current_access,
    current_calendar,
    deny,
    require_access,
    session_calendar_id,
    visible_calendars,
)
from bookwise.audit.services import Actor, record
from bookwise.calendars.models import Calendar
from bookwise.errors import BookwiseError, NotFound
from bookwise.i18n import gettext
from bookwise.web import db_session, instance

T = TypeVar("T")


def options(pairs: Iterable[tuple[Any, Any] | str]) -> list[SelectChoice]:
    """Choices of a select field (WTForms wants :class:`SelectChoice`; plain pairs are
    deprecated): ``(value, label)`` pairs, or values that are their own label."""
    return [
        SelectChoice(*pair) if isinstance(pair, tuple) else SelectChoice(pair, pair)
        for pair in pairs
    ]


def per_language(
    form_class: type[Any],
    prefix: str,
    locales: Iterable[str],
    label: Callable[[str], Any],
    max_length: int,
    rows: int | None = None,
) -> None:
    """Give a form one field per language, ``<prefix>_<code>`` (a text area when ``rows``)."""
    for code in locales:
        attributes: dict[str, Any] = {"lang": code}
        kind: type[Any] = StringField
        if rows:
            attributes["rows"] = rows
            kind = TextAreaField
        setattr(
            form_class,
            f"{prefix}_{code}",
            kind(label(code), validators=[Length(max=max_length)], render_kw=attributes),
        )


class Form(FlaskForm):  # type: ignore[misc]
    """Back-office forms: Flask-WTF's, so every one carries the session's CSRF token."""


class ActionForm(Form):
    """Empty: a button that changes something, with its CSRF token."""


class BackOffice:
    """Mixin of every back-office view (index, plain and model views)."""

    # What the user needs on the current calendar to open the view; None: any signed-in user
    # with a role somewhere (or a superadmin).
    need: ClassVar[Need | None] = "read"
    superadmin_only: ClassVar[bool] = False

    def _run_view(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the view. (Flask-Admin's own retries a view that raised TypeError with other
        arguments, which hides the real error.)"""
        return fn(self, *args, **kwargs)

    # --- rights -------------------------------------------------------------------------------

    @property
    def access(self) -> Access:
        return require_access()

    @property
    def db(self) -> Session:
        return db_session()

    @property
    def calendar(self) -> Calendar:
        """The calendar the back office works on (the header's switcher)."""
        calendar = current_calendar(self.db, self.access)
        if calendar is None:
            deny(self.access, "no calendar")
        return calendar

    def is_accessible(self) -> bool:
        access = current_access()
        if access is None:
            return False
        if self.superadmin_only:
            return access.superadmin
        if self.need is None:
            return access.has_any() or access.superadmin
        calendar = current_calendar(db_session(), access)
        return calendar is not None and access.allows(calendar.id, self.need)

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name: str, **_kwargs: Any) -> Response:
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        return deny(current_access(), f"view {type(self).__name__}.{name}")

    def require(self, calendar_id: int | None, need: Need, what: str) -> None:
        """403 (recorded) unless the user has ``need`` in that calendar. An object of another of
        the user's calendars makes that calendar the current one (the header then says whose
        object the page shows)."""
        check(self.access, calendar_id, need, what)
        if calendar_id is not None and calendar_id != session_calendar_id():
            choose_calendar(calendar_id)

    def owned(self, obj: T | None, calendar_id_of: Callable[[T], int], need: Need, what: str) -> T:
        """``obj`` when it exists and the user has ``need`` in its calendar: 404 when missing,
        403 (recorded) when it belongs to a calendar the user may not touch."""
        if obj is None:
            raise NotFound(f"no {what}")
        self.require(calendar_id_of(obj), need, what)
        return obj

    # --- writes -------------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        *,
        object_type: str | None = None,
        object_id: str | int | None = None,
        calendar_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Add an audit entry to the request's transaction (committed with the change)."""
        record(
            self.db,
            action,
            self.actor,
            object_type=object_type,
            object_id=object_id,
            calendar_id=calendar_id,
            details=details,
        )

    @property
    def actor(self) -> Actor:
        """The signed-in user as the audit log names them (for the services a view calls)."""
        return Actor(self.access.actor, user_id=self.access.user_id, ip=request.remote_addr)

    def commit(self, message: str | None = None) -> None:
        self.db.commit()
        if message:
            flash(message, "success")

    def commit_restore(self, number: int, new: int | None) -> None:
        """Commit a restore of version ``number``: saved as version ``new``, or None when it was
        the current version already."""
        if new is None:
            self.commit(gettext("This is already the current version."))
        else:
            self.commit(
                gettext("Version %(number)s restored as version %(new)s.", number=number, new=new)
            )

    def fail(self, error: BookwiseError | str) -> None:
        """Roll back and show the error to the user."""
        self.db.rollback()
        flash(str(error), "error")

    # --- rendering ----------------------------------------------------------------------------

    @property
    def _template_args(self) -> dict[str, Any]:
        args: dict[str, Any] = super()._template_args  # type: ignore[misc]
        access = current_access()
        if access is not None and "bw_access" not in args:
            session = db_session()
            args["bw_access"] = access
            args["bw_calendars"] = visible_calendars(session, access)
            args["bw_calendar"] = current_calendar(session, access)
            if access.superadmin:
                args["bw_plugin_problems"] = instance().database.plugins.problems()
            args["bw_switch_form"] = ActionForm()
        return args


class AdminView(BackOffice, BaseView):  # type: ignore[misc]
    """A back-office page of our own (forms calling services)."""
