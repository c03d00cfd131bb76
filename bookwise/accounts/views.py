"""Signing in and out, and the signed-in user's own page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from bookwise.accounts.models import CalendarRole, User
from bookwise.accounts.services import SignInFailed, authenticate
from bookwise.calendars.models import Calendar
from bookwise.i18n import gettext
from bookwise.web import db_session

blueprint = Blueprint("accounts", __name__, template_folder="templates")
login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = lazy_gettext("Please sign in to see this page.")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    if not user_id.isdigit():
        return None
    user = db_session().get(User, int(user_id))
    return user if user is not None and user.active else None


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = EmailField(
        lazy_gettext("E-mail"), validators=[DataRequired(), Email(), Length(max=320)]
    )
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):  # type: ignore[misc]
    """Empty: only carries the CSRF token, so that signing out cannot be forced by a link."""


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        session = db_session()
        try:
            user = authenticate(session, form.email.data, form.password.data)
        except SignInFailed as exc:
            session.commit()  # keep the failed-attempt counter
            error = (
                gettext("Too many failed attempts; try again in a few minutes.")
                if ("too many" in str(exc))
                else gettext("Wrong e-mail or password.")
            )
        else:
            session.commit()
            login_user(user)
            target = request.args.get("next", "")
            if not _local_path(target):
                target = url_for("accounts.account")
            return redirect(target)
    status = 401 if error else 200
    return render_template("accounts/login.html", form=form, error=error), status  # type: ignore[return-value]


def _local_path(target: str) -> bool:
    """Only a path of this site may follow sign-in: anything else would make us an open redirect
    (``//evil.example``, ``/\\evil.example`` that browsers read as ``//``, ``https:...``)."""
    parts = urlsplit(target)
    return (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not parts.scheme
        and not parts.netloc
    )


@blueprint.post("/logout")
def logout() -> Response:
    if LogoutForm().validate_on_submit():
        logout_user()
        flash(gettext("You are signed out."))
    return redirect(url_for("public.index"))


@blueprint.get("/account")
@login_required
def account() -> str:
    rows = db_session().execute(
        select(Calendar.name, Calendar.slug, CalendarRole.role)
        .join(CalendarRole, CalendarRole.calendar_id == Calendar.id)
        .where(CalendarRole.user_id == current_user.id)
        .order_by(Calendar.name)
    )
    return render_template("accounts/account.html", roles=list(rows), logout_form=LogoutForm())
