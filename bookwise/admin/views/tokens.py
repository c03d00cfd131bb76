"""Personal API tokens in the back office (issue 19): each user creates tokens for the current
calendar (a name, read or write), sees the secret once, and revokes them; the calendar's admins
see and may revoke every token of the calendar. See :mod:`bookwise.accounts.tokens`."""

from __future__ import annotations

from typing import Any

from flask import redirect, url_for
from flask_admin import expose
from flask_babel import get_locale, lazy_gettext
from sqlalchemy import select
from wtforms import RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from bookwise.accounts.models import ApiToken, User
from bookwise.accounts.tokens import TokenError, create_token, revoke_token
from bookwise.admin.access import deny
from bookwise.admin.base import ActionForm, AdminView, Form
from bookwise.db import begin_write
from bookwise.formatting import format_when
from bookwise.i18n import gettext
from bookwise.web import now


class TokenForm(Form):
    name = StringField(
        lazy_gettext("What it is for"),
        validators=[DataRequired(), Length(max=200)],
        description=lazy_gettext("Like: HR system, patient portal."),
    )
    scope = RadioField(
        lazy_gettext("It may"),
        choices=[
            SelectChoice(
                "read",
                lazy_gettext("Read only: bookings, staff, hours, settings, scenarios and reports"),
            ),
            SelectChoice(
                "write",
                lazy_gettext(
                    "Read and change what you may change in this calendar: bookings, staff,"
                    " hours, time off, settings, scenarios"
                ),
            ),
        ],
        default="read",
    )


class TokensView(AdminView):
    """The current calendar's API tokens: one's own (everyone), every one (its admins)."""

    need = "read"

    def _rows(self) -> list[dict[str, Any]]:
        calendar, access = self.calendar, self.access
        zone, locale = calendar.timezone, str(get_locale())
        query = select(ApiToken).where(ApiToken.calendar_id == calendar.id)
        if not access.allows(calendar.id, "admin"):
            query = query.where(ApiToken.user_id == access.user_id)
        rows = []
        for token in self.db.scalars(query.order_by(ApiToken.created_at.desc(), ApiToken.id)):
            rows.append(
                {
                    "token": token,
                    "owner": token.user.email,
                    "created": format_when(token.created_at, zone, locale),
                    "used": format_when(token.last_used_at, zone, locale)
                    if token.last_used_at
                    else "",
                    "revoked": format_when(token.revoked_at, zone, locale)
                    if token.revoked_at
                    else "",
                }
            )
        return rows

    def _page(self, form: TokenForm, secret: str = "") -> str:
        calendar = self.calendar
        return self.render(
            "bookwise_admin/tokens.html",
            # Named on the page with its slug, the calendar's id in the API (the tokens are its).
            calendar=calendar,
            # The times of the table (created, last used, revoked) are in the calendar's zone.
            zone=calendar.timezone,
            rows=self._rows(),
            form=form,
            action=ActionForm(),
            secret=secret,
        )

    @expose("/", methods=("GET", "POST"))
    def index(self) -> str:
        form = TokenForm()
        if not form.validate_on_submit():
            return self._page(form)
        self.db.rollback()
        begin_write(self.db)
        user = self.db.get(User, self.access.user_id)
        assert user is not None
        try:
            token, secret = create_token(
                self.db, user.email, self.calendar.slug, form.scope.data, form.name.data, now()
            )
        except TokenError as problem:
            self.fail(str(problem))
            return self._page(form)
        self.audit(
            "api_token.created",
            object_type="api_token",
            object_id=token.id,
            calendar_id=token.calendar_id,
            details={"scope": token.scope, "name": token.name},
        )
        self.commit()
        # Shown on this answer only: the page after a reload no longer has it.
        return self._page(TokenForm(formdata=None), secret)

    @expose("/<int:token_id>/revoke", methods=("POST",))
    def revoke(self, token_id: int) -> Any:
        token = self.db.get(ApiToken, token_id)
        access = self.access
        if token is None or not (
            token.user_id == access.user_id or access.allows(token.calendar_id, "admin")
        ):
            deny(access, "api token", token.calendar_id if token else None)
        if not ActionForm().validate_on_submit():
            deny(access, "revoke an API token without a valid form", token.calendar_id)
        self.db.rollback()
        begin_write(self.db)
        revoke_token(self.db, token_id, now())
        self.audit(
            "api_token.revoked",
            object_type="api_token",
            object_id=token_id,
            calendar_id=token.calendar_id,
        )
        self.commit(gettext("The token is revoked: it is refused from now on."))
        return redirect(url_for(".index"))
