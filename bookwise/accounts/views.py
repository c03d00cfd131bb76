"""Signing in and out, and the signed-in user's own page."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask import session as web_session
from flask_babel import lazy_gettext
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from bookwise.accounts.models import CalendarRole, User
from bookwise.accounts.services import (
    AccountError,
    SignInBusy,
    SignInFailed,
    WeakPassword,
    authenticate,
    change_password,
    end_sessions,
)
from bookwise.calendars.models import Calendar
from bookwise.db import begin_write, is_busy
from bookwise.errors import NotFound
from bookwise.i18n import gettext
from bookwise.web import db_session, instance, now

blueprint = Blueprint("accounts", __name__, template_folder="templates")
login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = lazy_gettext("Please sign in to see this page.")


SIGNED_IN_AT = "signed_in_at"
SEEN_AT = "seen_at"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The user of a session, while their account is active, the session's version is the
    user's (no sign-out, new password or admin ending it since), and the session is neither
    idle nor older than the configured limits (``security.session_*``)."""
    number, _, fingerprint = user_id.partition(".")
    if not number.isdigit() or len(number) > 12:
        return None
    if not _session_is_fresh():
        return None
    user = db_session().get(User, int(number))
    if user is None or not user.active:
        return None
    if not hmac.compare_digest(fingerprint, user.session_fingerprint):
        return None
    web_session[SEEN_AT] = int(now().timestamp())
    return user


def _session_is_fresh() -> bool:
    """Whether the session was used lately and opened recently enough, by the application's
    clock (the cookie's own expiry is the browser's business: a copied cookie ignores it)."""
    security = instance().settings.security
    moment = now().timestamp()
    signed_in, seen = web_session.get(SIGNED_IN_AT), web_session.get(SEEN_AT)
    if not isinstance(signed_in, int) or not isinstance(seen, int):
        return False
    return (
        moment - seen <= security.session_idle_minutes * 60
        and moment - signed_in <= security.session_max_hours * 3600
    )


def start_session(user: User) -> None:
    """Sign ``user`` in on this browser: a new session (a fixation-proof fresh cookie), timed
    from now."""
    web_session.clear()
    login_user(user)
    web_session.permanent = True
    web_session[SIGNED_IN_AT] = web_session[SEEN_AT] = int(now().timestamp())


class LoginForm(FlaskForm):  # type: ignore[misc]
    # No address validation here: signing in only looks the address up (and a strict
    # validator refuses reserved domains such as the demo's admin@bookwise.test).
    email = EmailField(lazy_gettext("E-mail"), validators=[DataRequired(), Length(max=320)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=200)])


class PasswordForm(FlaskForm):  # type: ignore[misc]
    current = PasswordField(
        lazy_gettext("Current password"), validators=[DataRequired(), Length(max=200)]
    )
    new = PasswordField(
        lazy_gettext("New password"),
        validators=[DataRequired(), Length(min=10, max=200)],
        description=lazy_gettext("At least 10 characters."),
    )
    repeat = PasswordField(
        lazy_gettext("New password again"),
        validators=[
            DataRequired(),
            EqualTo("new", message=lazy_gettext("The two new passwords differ.")),
        ],
    )


class LogoutForm(FlaskForm):  # type: ignore[misc]
    """Empty: only carries the CSRF token, so that signing out cannot be forced by a link."""


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        session = db_session()
        try:
            # A writer from the first read: attempts on one account wait for each other, so each
            # sees the counter the previous one left (see authenticate).
            session.rollback()
            begin_write(session)
            user = authenticate(session, form.email.data, form.password.data, now())
        except SignInFailed:
            session.commit()  # keep the failed-attempt counter
            error = gettext("Wrong e-mail or password.")
        except (SignInBusy, OperationalError) as exc:
            session.rollback()
            if isinstance(exc, OperationalError) and not is_busy(exc):
                raise
            error = gettext("Too many sign-ins at once; please try again in a moment.")
            page = render_template("accounts/login.html", form=form, error=error)
            return page, 503, {"Retry-After": str(SignInBusy.retry_after)}  # type: ignore[return-value]
        else:
            session.commit()
            start_session(user)
            target = request.args.get("next", "")
            if not local_path(target):
                target = (
                    url_for("admin.index") if _works_here(user) else url_for("accounts.account")
                )
            return redirect(target)
    status = 401 if error else 200
    return render_template("accounts/login.html", form=form, error=error), status  # type: ignore[return-value]


def local_path(target: str) -> bool:
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
        if current_user.is_authenticated:
            database = db_session()
            user = database.get(User, current_user.id)
            if user is not None:
                end_sessions(user)  # every copy of this cookie, and the user's other sessions
                database.commit()
        logout_user()
        web_session.clear()
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


def _works_here(user: User) -> bool:
    """Whether the user has a back office to go to (a role somewhere, or the whole instance)."""
    if user.is_superadmin:
        return True
    return (
        db_session().scalar(select(CalendarRole.id).where(CalendarRole.user_id == user.id).limit(1))
        is not None
    )


def _password_error(exc: AccountError) -> str:
    """What the password page says of a refused change, in the visitor's language."""
    if isinstance(exc, WeakPassword) and not exc.too_short:
        return gettext(
            "This password is too easy to guess: it is a common password or close to one. "
            "Add another word or two; uncommon words are better."
        )
    return {
        "the current password is not right": gettext("The current password is not right."),
        "the new password must differ from the current one": gettext(
            "The new password must differ from the current one."
        ),
    }.get(str(exc), gettext("The new password must have at least 10 characters."))


@blueprint.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password_page() -> str | Response:
    form = PasswordForm()
    error = None
    if form.validate_on_submit():
        session = db_session()
        user = session.get(User, current_user.id)
        assert user is not None
        try:
            change_password(session, user, form.current.data, form.new.data)
        except AccountError as exc:
            session.rollback()
            error = _password_error(exc)
        else:
            session.commit()
            start_session(user)  # this browser goes on with the new fingerprint; the others end
            flash(gettext("Your password is changed. Other sessions are signed out."))
            return redirect(url_for("accounts.account"))
    status = 422 if (error or form.errors) else 200
    return render_template("accounts/password.html", form=form, error=error), status  # type: ignore[return-value]


# --- a staff member answers their invitation (a link in an e-mail; no account needed) ---------


@blueprint.route("/staff-invitation/<token>/<answer>", methods=["GET", "POST"])
def staff_invitation(token: str, answer: str) -> str | Response:
    """Accept or decline being bookable. The e-mail's link opens a page with a button: a link
    alone must not change anything (mail scanners open links)."""
    from bookwise.calendars.editing import answer_invitation, find_invitation
    from bookwise.config import secret_key_of
    from bookwise.web import instance

    if answer not in ("accept", "decline") or len(token) > 512:
        raise NotFound("no such invitation")
    session = db_session()
    member = find_invitation(session, secret_key_of(instance().settings), token)
    form = LogoutForm()  # only the CSRF token
    done = False
    if request.method == "POST" and form.validate_on_submit():
        answer_invitation(session, member, accept=answer == "accept")
        session.commit()
        done = True
    g.noindex = True
    return render_template(
        "accounts/invitation.html",
        member=member,
        calendar=member.calendar,
        answer=answer,
        form=form,
        done=done,
    )
