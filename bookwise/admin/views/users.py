"""Users and their roles per calendar (superadmins)."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from flask_admin import expose
from flask_babel import lazy_gettext
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from bookwise.accounts.models import CALENDAR_ROLES, CalendarRole, User
from bookwise.accounts.services import (
    AccountError,
    CannotDeactivateSelf,
    NoSuchStaffMember,
    WeakPassword,
    create_user,
    revoke_role,
    set_calendar_role,
    set_user_active,
)
from bookwise.admin.access import deny
from bookwise.admin.base import ActionForm, AdminView, Form, options
from bookwise.calendars.models import Calendar
from bookwise.errors import NotFound
from bookwise.i18n import gettext


class NewUserForm(Form):
    email = EmailField(lazy_gettext("E-mail"), validators=[DataRequired(), Length(max=320)])
    name = StringField(lazy_gettext("Name"), validators=[Length(max=200)])
    password = PasswordField(
        lazy_gettext("Password"),
        validators=[DataRequired(), Length(min=10, max=200)],
        description=lazy_gettext("At least 10 characters. Give it to them by another channel."),
    )
    superadmin = BooleanField(lazy_gettext("Manages the whole instance (superadmin)"))


class RoleForm(Form):
    calendar_id = SelectField(lazy_gettext("Calendar"), coerce=int, validate_choice=True)
    role = SelectField(
        lazy_gettext("Role"),
        choices=options(
            [
                ("admin", lazy_gettext("Administrator")),
                ("viewer", lazy_gettext("Viewer")),
                ("staff", lazy_gettext("Staff member")),
            ]
        ),
    )
    staff_slug = StringField(
        lazy_gettext("Staff member it is (for the staff role)"),
        validators=[Length(max=64)],
        description=lazy_gettext("The identifier of their staff entry in that calendar."),
    )


def _account_error(exc: AccountError) -> str:
    text = str(exc)
    if "already exists" in text:
        return gettext("A user with this e-mail already exists.")
    if isinstance(exc, WeakPassword) and not exc.too_short:
        return gettext(
            "This password is too easy to guess: it is a common password or close to one. "
            "Add another word or two; uncommon words are better."
        )
    if "password" in text:
        return gettext("The password must have at least 10 characters.")
    return gettext("This is not an e-mail address.")


class UsersView(AdminView):
    superadmin_only = True

    def _user(self, user_id: int) -> User:
        user = self.db.get(User, user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    @expose("/")
    def index(self) -> str:
        users = list(self.db.scalars(select(User).order_by(User.email)))
        calendars = {c.id: c.name for c in self.db.scalars(select(Calendar))}
        return self.render(
            "bookwise_admin/users/list.html",
            users=[
                (u, [(calendars.get(r.calendar_id, "?"), r.role) for r in u.roles]) for u in users
            ],
        )

    @expose("/new", methods=("GET", "POST"))
    def create(self) -> Any:
        form = NewUserForm()
        error = None
        if form.validate_on_submit():
            try:
                user = create_user(
                    self.db,
                    form.email.data,
                    form.password.data,
                    name=(form.name.data or "").strip(),
                    superadmin=bool(form.superadmin.data),
                    actor=self.access.actor,
                )
            except AccountError as exc:
                self.db.rollback()
                error = _account_error(exc)
            else:
                self.commit(gettext("User created. Now give them a role in a calendar."))
                return redirect(url_for(".details", user_id=user.id))
        return self.render("bookwise_admin/users/new.html", form=form, error=error), (
            422 if request.method == "POST" else 200
        )

    @expose("/<int:user_id>/", methods=("GET", "POST"))
    def details(self, user_id: int) -> Any:
        user = self._user(user_id)
        calendars = list(self.db.scalars(select(Calendar).order_by(Calendar.name)))
        form = RoleForm()
        form.calendar_id.choices = options([(c.id, c.name) for c in calendars])
        error = None
        if request.method == "POST":
            if form.validate_on_submit():
                slug = (form.staff_slug.data or "").strip()
                try:
                    set_calendar_role(
                        self.db,
                        user,
                        form.calendar_id.data,
                        form.role.data,
                        staff_slug=slug,
                        actor=self.access.actor,
                    )
                except NoSuchStaffMember:
                    error = gettext("No staff member %(slug)s in this calendar.", slug=slug or "—")
                else:
                    self.commit(gettext("Role saved."))
                    return redirect(url_for(".details", user_id=user.id))
            elif form.csrf_token.errors:
                deny(self.access, "role without a valid form")
        names = {c.id: c.name for c in calendars}
        return self.render(
            "bookwise_admin/users/details.html",
            user=user,
            roles=[(names.get(r.calendar_id, "?"), r) for r in user.roles],
            form=form,
            error=error,
            action_form=ActionForm(),
            role_names=CALENDAR_ROLES,
        ), (422 if error or form.errors else 200)

    @expose("/<int:user_id>/roles/<int:role_id>/remove", methods=("POST",))
    def remove_role(self, user_id: int, role_id: int) -> Response:
        user = self._user(user_id)
        role = self.db.get(CalendarRole, role_id)
        if role is None or role.user_id != user.id:
            raise NotFound("no such role")
        if not ActionForm().validate_on_submit():
            deny(self.access, "remove role without a valid form")
        revoke_role(self.db, role, self.actor)
        self.commit(gettext("Role removed."))
        return redirect(url_for(".details", user_id=user.id))

    @expose("/<int:user_id>/active", methods=("POST",))
    def toggle_active(self, user_id: int) -> Response:
        user = self._user(user_id)
        if not ActionForm().validate_on_submit():
            deny(self.access, "deactivate without a valid form")
        try:
            set_user_active(self.db, user, not user.active, self.actor)
        except CannotDeactivateSelf:
            self.fail(gettext("You cannot deactivate yourself."))
        else:
            self.commit(gettext("Saved."))
        return redirect(url_for(".details", user_id=user.id))
