"""Message templates in the back office: every event, channel and language, edited with the list of
variables beside the editor and a live preview rendered with a sample booking.

A calendar's admins edit the calendar's own copy (its messages only); a superadmin may also edit
the instance's wording, used by every calendar without a copy. A template is checked (syntax,
sandbox, variables) before it is saved; "reset" goes back to the default. Every change of wording
is a version: the history lists them, a version shows its changes, and restoring one saves it as
a new version.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, redirect, request, url_for
from flask_admin import expose
from flask_babel import lazy_gettext
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from bookwise.admin.access import deny
from bookwise.admin.base import ActionForm, AdminView, Form
from bookwise.errors import NotFound
from bookwise.formatting import format_when
from bookwise.i18n import format_locale, gettext
from bookwise.notifications.models import MessageTemplateVersion
from bookwise.notifications.rendering import (
    VARIABLES,
    TemplateParts,
    TemplateProblem,
    check_parts,
    render,
    sample_context,
    text_to_html,
)
from bookwise.notifications.services import (
    InvalidTemplate,
    TemplateKey,
    effective_template,
    reset_template,
    restore_template_version,
    save_template,
    template_keys,
    template_origins,
    template_version,
    template_versions,
    version_parts,
)
from bookwise.web import instance, now
from bookwise.workflows.editing import diff

MAX_PART = 20_000


class TemplateForm(Form):
    subject = StringField(lazy_gettext("Subject"), validators=[Length(max=500)])
    text = TextAreaField(
        lazy_gettext("Text"),
        validators=[Length(max=MAX_PART)],
        render_kw={"rows": 14, "spellcheck": "true", "class": "code-editor"},
    )
    html = TextAreaField(
        lazy_gettext("HTML (optional)"),
        validators=[Length(max=MAX_PART)],
        render_kw={"rows": 8, "spellcheck": "false", "class": "code-editor"},
        description=lazy_gettext("Empty: the text is sent as simple HTML."),
    )
    comment = StringField(
        lazy_gettext("What changed (for the history)"), validators=[Length(max=500)]
    )


def event_name(name: str) -> str:
    names = {
        "requested": gettext("Booking requested"),
        "confirmed": gettext("Booking confirmed"),
        "declined": gettext("Booking declined"),
        "cancelled": gettext("Booking cancelled"),
        "rescheduled": gettext("Booking moved"),
        "completed": gettext("Booking completed"),
        "no_show": gettext("Client did not come"),
        "reminder": gettext("Reminder"),
        "follow_up": gettext("Follow-up"),
        "time-off": gettext("Time off recorded"),
        "staff-invitation": gettext("Staff invitation"),
        "calendar-feed-failing": gettext("A staff calendar cannot be read"),
        "waitlist_offer": gettext("Waitlist: a place offered"),
        "waitlist_joined": gettext("Waitlist: joined"),
    }
    return names.get(name, name)


def audience_name(audience: str) -> str:
    return gettext("to the client") if audience == "client" else gettext("to staff")


class TemplatesView(AdminView):
    need = "admin"

    def _scope(self) -> int | None:
        """The calendar whose copy is edited, or None for the instance's wording (superadmins)."""
        if request.values.get("scope") == "instance":
            if not self.access.superadmin:
                deny(self.access, "instance templates", self.calendar.id)
            return None
        return self.calendar.id

    def _key(self, template: str, audience: str, channel: str, locale: str) -> TemplateKey:
        key = TemplateKey(template, audience, channel, locale)
        if key not in set(template_keys(self.db)):
            raise NotFound("no such template")
        return key

    @expose("/")
    def index(self) -> str:
        scope = self._scope()
        origins = template_origins(self.db, scope)
        locales = list(instance().settings.locales)
        groups: dict[tuple[str, str, str], dict[str, str]] = {}
        for key in template_keys(self.db):
            groups.setdefault((key.name, key.audience, key.channel), {})[key.locale] = origins.get(
                key, "default"
            )
        rows = [
            {
                "name": name,
                "label": event_name(name),
                "audience": audience,
                "audience_label": audience_name(audience),
                "channel": channel,
                "locales": [(code, by_locale.get(code)) for code in locales],
            }
            for (name, audience, channel), by_locale in sorted(
                groups.items(), key=lambda item: (event_name(item[0][0]).casefold(), item[0][1:])
            )
        ]
        return self.render(
            "bookwise_admin/templates/list.html",
            rows=rows,
            locales=locales,
            scope="instance" if scope is None else "calendar",
            superadmin=self.access.superadmin,
        )

    @expose("/<template>/<audience>/<channel>/<locale>", methods=("GET", "POST"))
    def edit(self, template: str, audience: str, channel: str, locale: str) -> Any:
        key = self._key(template, audience, channel, locale)
        scope = self._scope()
        current = effective_template(self.db, key, scope)
        assert current is not None
        posted = request.method == "POST"
        form = (
            TemplateForm()
            if posted
            else TemplateForm(
                data={
                    "subject": current.parts.subject or "",
                    "text": current.parts.text,
                    "html": current.parts.html or "",
                }
            )
        )
        status = 200
        preview = None
        if posted:
            if not form.validate_on_submit():
                if form.csrf_token.errors:
                    deny(self.access, "template without a valid form", self.calendar.id)
                status = 422
            else:
                parts = _parts(form, channel)
                if request.form.get("op") == "preview":
                    preview = _preview(parts, locale)
                    _mark(form, preview["problems"])
                    status = 422 if preview["problems"] else 200
                else:
                    try:
                        save_template(
                            self.db,
                            key,
                            parts,
                            calendar_id=scope,
                            author=self.access.actor,
                            ip=request.remote_addr,
                            comment=(form.comment.data or "").strip() or None,
                            now=now(),
                        )
                    except InvalidTemplate as invalid:
                        self.db.rollback()
                        _mark(form, invalid.problems)
                        status = 422
                    else:
                        self.commit(gettext("Template saved; the next messages use it."))
                        return redirect(self._url(key, scope))
        if preview is None and status == 200:
            preview = _preview(_parts(form, channel), locale)
        return self.render(
            "bookwise_admin/templates/edit.html",
            form=form,
            key=key,
            label=event_name(template),
            audience_label=audience_name(audience),
            origin=current.origin,
            scope="instance" if scope is None else "calendar",
            variables=[(v, gettext(d)) for v, d in VARIABLES.items()],
            preview=preview,
            action_form=ActionForm(),
            email=channel == "email",
        ), status

    def _url(self, key: TemplateKey, scope: int | None) -> str:
        return url_for(".edit", **_key_args(key, scope))

    @expose("/<template>/<audience>/<channel>/<locale>/preview", methods=("POST",))
    def live_preview(self, template: str, audience: str, channel: str, locale: str) -> Response:
        """The live preview (the editor's script posts the form here as the user types)."""
        key = self._key(template, audience, channel, locale)
        self._scope()
        form = TemplateForm()
        if not form.validate_on_submit():
            return jsonify(problems=[gettext("The form expired; reload the page.")]), 400  # type: ignore[return-value]
        return jsonify(_preview(_parts(form, channel), key.locale))

    @expose("/<template>/<audience>/<channel>/<locale>/reset", methods=("POST",))
    def reset(self, template: str, audience: str, channel: str, locale: str) -> Response:
        key = self._key(template, audience, channel, locale)
        scope = self._scope()
        if not ActionForm().validate_on_submit():
            deny(self.access, "reset template without a valid form", self.calendar.id)
        reset_template(
            self.db,
            key,
            calendar_id=scope,
            folders=[instance().settings.templates_dir],
            author=self.access.actor,
            ip=request.remote_addr,
            now=now(),
        )
        self.commit(gettext("Back to the default wording."))
        return redirect(self._url(key, scope))

    # --- versions -------------------------------------------------------------------------------

    @expose("/<template>/<audience>/<channel>/<locale>/history")
    def history(self, template: str, audience: str, channel: str, locale: str) -> str:
        """Every version of the template (this calendar's copy, or the instance's), newest first."""
        key = self._key(template, audience, channel, locale)
        scope = self._scope()
        zone, language = self.calendar.timezone, format_locale()
        return self.render(
            "bookwise_admin/templates/history.html",
            key=key,
            label=event_name(template),
            audience_label=audience_name(audience),
            key_args=_key_args(key, scope),
            versions=[
                {
                    "version": v,
                    "when": format_when(v.created_at, zone, language),
                    "how": action_name(v.action),
                }
                for v in template_versions(self.db, key, scope)
            ],
            form=ActionForm(),
        )

    @expose("/<template>/<audience>/<channel>/<locale>/history/<int:number>")
    def version(self, template: str, audience: str, channel: str, locale: str, number: int) -> str:
        """One version's wording and its changes from the previous one (or ``?against=N``)."""
        key = self._key(template, audience, channel, locale)
        scope = self._scope()
        version = _find(self.db, key, scope, number)
        latest = template_versions(self.db, key, scope)[0]
        against = request.args.get("against", "")
        other_number = int(against) if _small_number(against) else None
        if other_number is None:
            other_number = number - 1 if number > 1 else latest.number
        try:
            other = template_version(self.db, key, scope, other_number)
        except NotFound:
            other = latest
        return self.render(
            "bookwise_admin/templates/version.html",
            key=key,
            label=event_name(template),
            audience_label=audience_name(audience),
            key_args=_key_args(key, scope),
            version=version,
            parts=version_parts(version),
            other=other,
            latest=latest,
            changes=_changes(other, version),
            when=format_when(version.created_at, self.calendar.timezone, format_locale()),
            how=action_name(version.action),
            form=ActionForm(),
        )

    @expose(
        "/<template>/<audience>/<channel>/<locale>/history/<int:number>/restore", methods=("POST",)
    )
    def restore(
        self, template: str, audience: str, channel: str, locale: str, number: int
    ) -> Response:
        """Save an earlier version's wording again, as a new version."""
        key = self._key(template, audience, channel, locale)
        scope = self._scope()
        if not ActionForm().validate_on_submit():
            deny(self.access, "restore template without a valid form", self.calendar.id)
        _find(self.db, key, scope, number)
        try:
            added = restore_template_version(
                self.db,
                key,
                scope,
                number,
                author=self.access.actor,
                ip=request.remote_addr,
                comment=gettext("Restored version %(number)s", number=number),
                now=now(),
            )
        except InvalidTemplate as invalid:
            self.fail(
                gettext(
                    "Version %(number)s cannot be restored: %(problem)s",
                    number=number,
                    problem="; ".join(invalid.problems),
                )
            )
            return redirect(url_for(".version", number=number, **_key_args(key, scope)))
        self.commit_restore(number, added.number if added is not None else None)
        return redirect(self._url(key, scope))


def _key_args(key: TemplateKey, scope: int | None) -> dict[str, Any]:
    """The URL values naming a template, and whose wording (``scope=instance``)."""
    values: dict[str, Any] = {
        "template": key.name,
        "audience": key.audience,
        "channel": key.channel,
        "locale": key.locale,
    }
    if scope is None:
        values["scope"] = "instance"
    return values


def action_name(action: str) -> str:
    """How a version came to be, as the history says it."""
    names = {
        "default": gettext("before the first change"),
        "saved": gettext("edited"),
        "reset": gettext("reset to the default"),
        "restored": gettext("restored"),
    }
    return names.get(action, action)


def _find(
    session: Session, key: TemplateKey, scope: int | None, number: int
) -> MessageTemplateVersion:
    """Version ``number`` of the template, :class:`NotFound` (404) for a number no version has
    (however large: the database is not asked about numbers past its integers)."""
    if number > 999_999:
        raise NotFound(f"no version {number}")
    return template_version(session, key, scope, number)


def _small_number(text: str) -> bool:
    """``text`` is a version number (ASCII digits: ``int("²")`` fails), of at most six."""
    return text.isascii() and text.isdigit() and len(text) < 7


def _changes(
    old: MessageTemplateVersion, new: MessageTemplateVersion
) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each part that differs between two versions (subject, text, HTML), with its line diff."""
    before, after = version_parts(old), version_parts(new)
    labels = {"subject": gettext("Subject"), "text": gettext("Text"), "html": gettext("HTML")}
    out = []
    for part, label in labels.items():
        lines = diff(
            getattr(before, part) or "",
            getattr(after, part) or "",
            f"v{old.number}",
            f"v{new.number}",
        )
        if lines:
            out.append((label, lines))
    return out


def _parts(form: TemplateForm, channel: str) -> TemplateParts:
    text = (form.text.data or "").replace("\r\n", "\n")
    subject = (form.subject.data or "").strip() or None
    html = (form.html.data or "").replace("\r\n", "\n").strip() or None
    if channel != "email":  # a text message has neither subject nor HTML
        subject = html = None
    return TemplateParts(text=text, subject=subject, html=html)


def _preview(parts: TemplateParts, locale: str) -> dict[str, Any]:
    problems = check_parts(parts) if parts.text.strip() else [gettext("text: the text is empty")]
    if problems:
        return {"problems": problems, "subject": "", "text": "", "html": ""}
    try:
        rendered = render(parts, sample_context(locale))
    except TemplateProblem as exc:
        return {"problems": [str(exc)], "subject": "", "text": "", "html": ""}
    return {
        "problems": [],
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html or text_to_html(rendered.text),
    }


def _mark(form: TemplateForm, problems: list[str]) -> None:
    """Each problem beside its part ("subject: ...", "text: ...", "html: ...")."""
    for problem in problems:
        part, _, message = problem.partition(": ")
        target = {"subject": form.subject, "text": form.text, "html": form.html}.get(part)
        if target is None:
            form.text.errors = [*form.text.errors, problem]
        else:
            target.errors = [*target.errors, message]
