"""Calendars, their staff and their services in the back office.

Calendars: settings (time zone, hours, booking page options, embedding), the link and iframe
snippet to copy, the private address of the calendar's subscribable feed, new calendars and
clones (superadmins). Staff: members with their hours, time off and tags, their own calendars
read for busy times (bookwise.calendars.sources), the private address of their bookings' feed
(bookwise.calendars.feeds), invitations, removal without orphaned bookings. Services: which
workflows the calendar offers and with whom.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale, lazy_gettext
from flask_login import current_user
from flask_wtf.file import FileField, FileRequired
from markupsafe import Markup
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
    URLField,
)
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget

from bookwise.admin.access import deny, visible_calendars
from bookwise.admin.base import ActionForm, AdminView, Form, options, per_language
from bookwise.admin.display import booking_rows, workflow_name
from bookwise.calendars.editing import (
    REMOVAL_MODES,
    CalendarSettings,
    CannotReassign,
    StaffValues,
    add_staff,
    add_time_off,
    clone_calendar,
    create_calendar,
    format_hours,
    future_bookings,
    invite_again,
    parse_hours_text,
    parse_origins,
    parse_tags,
    plugins_needed,
    quiet_hours_values,
    remove_staff,
    remove_time_off,
    set_hours,
    update_calendar,
    update_service,
    update_staff,
)
from bookwise.calendars.feeds import active_link, create_link, stop_link
from bookwise.calendars.models import (
    Calendar,
    CalendarSource,
    FeedLink,
    Service,
    StaffMember,
    TimeOff,
)
from bookwise.calendars.services import export_calendars
from bookwise.calendars.sources import (
    MAX_FILE_BYTES,
    RefreshOutcome,
    SourceRefused,
    SourceStatus,
    add_caldav_source,
    add_file_source,
    add_url_source,
    in_words,
    refresh_sources,
    remove_source,
    source_statuses,
)
from bookwise.config import secret_key_of
from bookwise.db import begin_write
from bookwise.errors import N_, InvalidInput, Message, NotFound
from bookwise.formatting import format_day, format_when
from bookwise.i18n import gettext, ngettext
from bookwise.timezones import local_to_utc, zone_names
from bookwise.web import instance, now, plugin_host
from bookwise.workflows.services import workflow_of

WEEKDAYS = (
    lazy_gettext("Monday"),
    lazy_gettext("Tuesday"),
    lazy_gettext("Wednesday"),
    lazy_gettext("Thursday"),
    lazy_gettext("Friday"),
    lazy_gettext("Saturday"),
    lazy_gettext("Sunday"),
)


def _locale() -> str:
    return str(get_locale())


def show_problems(form: Any, invalid: InvalidInput) -> list[str]:
    """Put each problem beside its field; the ones without a field are returned."""
    loose = []
    for name, message in invalid.problems.items():
        text = message.translate(gettext)
        if name in form:
            form[name].errors = [*form[name].errors, text]
        else:
            loose.append(text)
    return loose


# --- subscribed calendars (bookwise.calendars.feeds) ----------------------------------------


def feed_panel(link: FeedLink | None, zone: str, address: str | None = None) -> dict[str, Any]:
    """What a "Subscribe" section shows: when the address in force was made and last used, and
    the address itself only in the answer that made it (only its hash is stored)."""
    locale = _locale()
    made = used = None
    if link is not None:
        made = format_day(link.created_at.astimezone(ZoneInfo(zone)), locale)
        if link.last_used_at is not None:
            used = format_when(link.last_used_at, zone, locale)
    return {
        "made": made,
        "used": used,
        "address": address,
        # The same address for the calendar apps that subscribe on a click (Apple, Outlook).
        "webcal": "webcal://" + address.split("://", 1)[1] if address else None,
    }


# --- calendars -----------------------------------------------------------------------------


# A plugin a calendar may choose: its name and what it provides (PluginInfo.provides).
PluginOffer = tuple[str, dict[str, list[str]]]


def offered_plugins() -> list[PluginOffer]:
    """The instance's loaded plugins a calendar may choose (the core's are always used)."""
    return [(info.name, info.provides) for info in plugin_host().optional()]


def calendar_form(locales: tuple[str, ...], plugins: Sequence[PluginOffer] = ()) -> type[Form]:
    """The settings form; its Plugins group only when the instance has ``plugins`` to offer."""

    class CalendarForm(Form):
        name = StringField(lazy_gettext("Name"), validators=[DataRequired(), Length(max=200)])
        slug = StringField(
            lazy_gettext("Address of the booking page"),
            validators=[DataRequired(), Length(max=64)],
            description=lazy_gettext(
                "Lowercase letters, digits and dashes. Changing it breaks links already shared."
            ),
        )
        timezone = SelectField(lazy_gettext("Time zone"), validate_choice=False)
        default_locale = SelectField(lazy_gettext("Default language"), validate_choice=False)
        address = StringField(lazy_gettext("Address"), validators=[Length(max=500)])
        phone = TelField(lazy_gettext("Phone"), validators=[Length(max=40)])
        reply_to = EmailField(
            lazy_gettext("Reply-to address"),
            validators=[Length(max=320)],
            description=lazy_gettext("Clients' replies to our e-mails go here."),
        )
        published = BooleanField(lazy_gettext("Published: clients can book on the page"))
        search_indexing = BooleanField(lazy_gettext("Search engines may index the page"))
        sign_in_required = BooleanField(
            lazy_gettext("Only signed-in users of this instance may book")
        )
        show_business_timezone = BooleanField(
            lazy_gettext("Always show times in the business's time zone")
        )
        embed_origins = TextAreaField(
            lazy_gettext("Sites allowed to embed the page"),
            description=lazy_gettext(
                "One per line, like https://www.example.org. They may also call the booking "
                "API from the visitor's browser. None: the page cannot be framed."
            ),
            render_kw={"rows": 3},
        )
        feed_client_names = BooleanField(
            lazy_gettext("Show clients' names in subscribed calendars"),
            description=lazy_gettext(
                "Off, events show only the service: for health and HR calendars."
            ),
        )
        quiet_from = StringField(
            lazy_gettext("Quiet hours from"),
            validators=[Length(max=5)],
            description=lazy_gettext(
                "Text messages due between these times, on the recipient's clock, wait until "
                "the end. Empty: none."
            ),
            render_kw={"type": "time"},
        )
        quiet_to = StringField(
            lazy_gettext("Quiet hours until"),
            validators=[Length(max=5)],
            render_kw={"type": "time"},
        )
        quiet_email = BooleanField(lazy_gettext("E-mail waits too"))

    per_language(
        CalendarForm,
        "description",
        locales,
        lambda code: lazy_gettext("Description (%(language)s)", language=code),
        2000,
        rows=2,
    )
    if plugins:
        CalendarForm.plugin_choice = RadioField(
            lazy_gettext("Plugins"),
            choices=options(
                [
                    ("all", lazy_gettext("All the plugins of this site")),
                    ("only", lazy_gettext("Only those ticked (none ticked: no plugin)")),
                ]
            ),
            default="all",
            validate_choice=False,
        )
        CalendarForm.plugins = SelectMultipleField(
            lazy_gettext("Plugins this calendar uses"),
            choices=options([name for name, _provides in plugins]),
            validate_choice=False,  # the service refuses a name it does not know, on the field
            widget=ListWidget(prefix_label=False),
            option_widget=CheckboxInput(),
        )
    return CalendarForm


def _plugins_of(form: Any, current: Sequence[str] | None) -> tuple[str, ...] | None:
    """The plugins chosen in ``form``: None for every one; the calendar's ``current`` choice
    when the form has no Plugins group. Names the form could not show (plugins no longer
    enabled on the instance) are kept."""
    kept = None if current is None else tuple(current)
    if "plugin_choice" not in form:
        return kept
    choice = form.plugin_choice.data
    if choice == "all":
        return None
    if choice != "only":
        return kept
    shown = {choice.value for choice in form.plugins.choices}
    chosen = [name for name in form.plugins.data or [] if name]
    chosen += [name for name in kept or () if name not in shown and name not in chosen]
    if kept is not None and sorted(chosen) == sorted(kept):
        return kept  # the same choice, in the order it was saved
    return tuple(chosen)


def _settings_of(
    form: Any, locales: tuple[str, ...], current_plugins: Sequence[str] | None = None
) -> CalendarSettings:
    return CalendarSettings(
        name=(form.name.data or "").strip(),
        slug=(form.slug.data or "").strip().lower(),
        timezone=form.timezone.data or "",
        default_locale=form.default_locale.data or "",
        description={code: form[f"description_{code}"].data or "" for code in locales},
        address=form.address.data or "",
        phone=form.phone.data or "",
        reply_to=form.reply_to.data or "",
        published=bool(form.published.data),
        search_indexing=bool(form.search_indexing.data),
        sign_in_required=bool(form.sign_in_required.data),
        show_business_timezone=bool(form.show_business_timezone.data),
        embed_origins=parse_origins(form.embed_origins.data or ""),
        plugins=_plugins_of(form, current_plugins),
        feed_client_names=bool(form.feed_client_names.data),
        quiet_from=form.quiet_from.data or "",
        quiet_to=form.quiet_to.data or "",
        quiet_email=bool(form.quiet_email.data),
    )


def _calendar_data(calendar: Calendar, locales: tuple[str, ...]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": calendar.name,
        "slug": calendar.slug,
        "timezone": calendar.timezone,
        "default_locale": calendar.default_locale,
        "address": calendar.address or "",
        "phone": calendar.phone or "",
        "reply_to": calendar.reply_to or "",
        "published": calendar.published,
        "search_indexing": calendar.search_indexing,
        "sign_in_required": calendar.sign_in_required,
        "show_business_timezone": calendar.show_business_timezone,
        "embed_origins": "\n".join(calendar.embed_origins or []),
        "plugin_choice": "all" if calendar.plugins is None else "only",
        "plugins": list(calendar.plugins or []),
        "feed_client_names": calendar.feed_client_names,
        **quiet_hours_values(calendar),
    }
    for code in locales:
        data[f"description_{code}"] = (calendar.description or {}).get(code, "")
    return data


def _prepare(form: Any, locales: tuple[str, ...]) -> None:
    form.timezone.choices = options(sorted(zone_names()))
    form.default_locale.choices = options(list(locales))


class HoursForm(Form):
    pass


def hours_form(data: dict[str, str] | None = None) -> Form:
    class WeekForm(HoursForm):
        pass

    for weekday, label in enumerate(WEEKDAYS):
        setattr(
            WeekForm,
            f"day_{weekday}",
            StringField(
                label,
                validators=[Length(max=200)],
                render_kw={"placeholder": gettext("closed"), "spellcheck": "false"},
            ),
        )
    return WeekForm(data=data)


def _hours_data(rows: Any) -> dict[str, str]:
    by_day: dict[int, list[tuple[int, int]]] = {}
    for row in rows:
        by_day.setdefault(row.weekday, []).append((row.start_minute, row.end_minute))
    return {f"day_{d}": format_hours(sorted(by_day.get(d, []))) for d in range(7)}


def _read_hours(form: Any) -> list[tuple[int, int, int]] | None:
    """The week's ranges, or None after marking the unreadable days."""
    hours: list[tuple[int, int, int]] = []
    good = True
    for weekday in range(7):
        field = form[f"day_{weekday}"]
        try:
            hours += [(weekday, s, e) for s, e in parse_hours_text(field.data or "")]
        except ValueError as exc:
            field.errors = [
                gettext(
                    "%(text)s is not a time range; write it like 09:00-12:30 (24-hour clock).",
                    text=str(exc),
                )
            ]
            good = False
    return hours if good else None


class CloneForm(Form):
    name = StringField(
        lazy_gettext("Name of the copy"), validators=[DataRequired(), Length(max=200)]
    )
    slug = StringField(
        lazy_gettext("Address of its booking page"), validators=[DataRequired(), Length(max=64)]
    )


class CalendarsView(AdminView):
    need = None

    def _locales(self) -> tuple[str, ...]:
        return tuple(instance().settings.locales)

    def _calendar(self, calendar_id: int, need: str = "view") -> Calendar:
        calendar = self.db.get(Calendar, calendar_id)
        if calendar is None:
            raise NotFound("no such calendar")
        self.require(calendar.id, need, "calendar")  # type: ignore[arg-type]
        return calendar

    @expose("/")
    def index(self) -> str:
        access = self.access
        calendars = visible_calendars(self.db, access)
        return self.render(
            "bookwise_admin/calendars/list.html",
            calendars=[(c, access.role(c.id)) for c in calendars],
            superadmin=access.superadmin,
        )

    @expose("/new", methods=("GET", "POST"))
    def create(self) -> Any:
        access = self.access
        if not access.superadmin:
            deny(access, "create calendar")
        locales = self._locales()
        plugins = offered_plugins()
        form = calendar_form(locales, plugins)(
            data={"timezone": "Europe/Paris", "default_locale": locales[0], "published": False}
            if request.method == "GET"
            else None
        )
        _prepare(form, locales)
        problems: list[str] = []
        if form.validate_on_submit():
            try:
                calendar = create_calendar(
                    self.db,
                    _settings_of(form, locales),
                    locales,
                    access.actor,
                    request.remote_addr,
                    offered_plugins=[name for name, _provides in plugins],
                )
            except InvalidInput as invalid:
                self.db.rollback()
                problems = show_problems(form, invalid)
            else:
                self.commit(gettext("Calendar created. Add its staff and services next."))
                from bookwise.admin.access import choose_calendar

                choose_calendar(calendar.id)
                return redirect(url_for(".settings", calendar_id=calendar.id))
        return self.render(
            "bookwise_admin/calendars/edit.html",
            form=form,
            problems=problems,
            calendar=None,
            editable=True,
            locales=locales,
            plugin_offers=dict(plugins),
        ), (422 if request.method == "POST" else 200)

    @expose("/<int:calendar_id>/", methods=("GET", "POST"))
    def settings(self, calendar_id: int) -> Any:
        calendar = self._calendar(calendar_id)
        access = self.access
        editable = access.allows(calendar.id, "admin")
        locales = self._locales()
        plugins = offered_plugins()
        form_class = calendar_form(locales, plugins)
        posted = request.method == "POST"
        if posted and not editable:
            deny(access, "edit calendar", calendar.id)
        form = form_class() if posted else form_class(data=_calendar_data(calendar, locales))
        _prepare(form, locales)
        problems: list[str] = []
        status = 200
        if posted:
            if form.validate_on_submit():
                try:
                    changes = update_calendar(
                        self.db,
                        calendar,
                        _settings_of(form, locales, calendar.plugins),
                        locales,
                        access.actor,
                        request.remote_addr,
                        offered_plugins=[name for name, _provides in plugins],
                        needed_plugins=plugins_needed(
                            self.db, calendar, plugin_host().optional_meeting_owner
                        ),
                    )
                except InvalidInput as invalid:
                    self.db.rollback()
                    problems = show_problems(form, invalid)
                    status = 422
                else:
                    self.commit(gettext("Saved.") if changes else gettext("Nothing changed."))
                    return redirect(url_for(".settings", calendar_id=calendar.id))
            else:
                status = 422
        week = hours_form(_hours_data(calendar.hours))
        return self._settings_page(calendar, form, week, problems, editable, status)

    def _settings_page(
        self,
        calendar: Calendar,
        form: Any,
        week: Any,
        problems: list[str],
        editable: bool,
        status: int,
        feed_address: str | None = None,
    ) -> Any:
        base = instance().settings.base_url
        page_url = f"{base}/{calendar.slug}"
        embed_url = f"{base}/embed/{calendar.slug}"
        services = []
        for service in calendar.services:
            workflow = workflow_of(service.workflow.versions[-1])
            services.append(
                {
                    "name": workflow_name(workflow, _locale(), calendar.default_locale),
                    "page": f"{page_url}/{workflow.id}",
                    "embed": f"{embed_url}/{workflow.id}",
                    "active": service.active,
                }
            )
        offers = dict(offered_plugins())
        return self.render(
            "bookwise_admin/calendars/edit.html",
            form=form,
            plugin_offers=offers,
            # Chosen before, no longer enabled on the instance: kept, shown apart.
            plugins_not_enabled=[n for n in calendar.plugins or () if n not in offers],
            week=week,
            problems=problems,
            calendar=calendar,
            editable=editable,
            locales=self._locales(),
            page_url=page_url,
            embed_snippet=_iframe(embed_url, calendar.name),
            services=services,
            clone_form=CloneForm(data={"name": gettext("Copy of %(name)s", name=calendar.name)})
            if self.access.superadmin
            else None,
            action_form=ActionForm(),
            feed=feed_panel(active_link(self.db, calendar, None), calendar.timezone, feed_address)
            if editable
            else None,
        ), status

    def _settings_form(self, calendar: Calendar) -> Any:
        locales = self._locales()
        form = calendar_form(locales, offered_plugins())(data=_calendar_data(calendar, locales))
        _prepare(form, locales)
        return form

    @expose("/<int:calendar_id>/subscribe", methods=("POST",))
    def make_feed(self, calendar_id: int) -> Any:
        """A new private address of the calendar's feed (ending the one before), shown in this
        answer only."""
        calendar = self._calendar(calendar_id, "admin")
        if not ActionForm().validate_on_submit():
            deny(self.access, "calendar feed without a valid form", calendar.id)
        address = create_link(
            self.db,
            calendar,
            None,
            actor=self.actor,
            now=now(),
            base_url=instance().settings.base_url,
        )
        self.commit()
        week = hours_form(_hours_data(calendar.hours))
        return self._settings_page(
            calendar, self._settings_form(calendar), week, [], True, 200, feed_address=address
        )

    @expose("/<int:calendar_id>/subscribe/stop", methods=("POST",))
    def stop_feed(self, calendar_id: int) -> Response:
        calendar = self._calendar(calendar_id, "admin")
        if not ActionForm().validate_on_submit():
            deny(self.access, "stop calendar feed without a valid form", calendar.id)
        stopped = stop_link(self.db, calendar, None, actor=self.actor, now=now())
        self.commit(_stopped_message(stopped))
        return redirect(url_for(".settings", calendar_id=calendar.id) + "#subscribe")

    @expose("/<int:calendar_id>/hours", methods=("POST",))
    def hours(self, calendar_id: int) -> Any:
        calendar = self._calendar(calendar_id, "admin")
        week = hours_form()
        if not week.validate_on_submit():
            deny(self.access, "calendar hours without a valid form", calendar.id)
        hours = _read_hours(week)
        if hours is not None:
            try:
                set_hours(self.db, calendar, None, hours, self.access.actor, request.remote_addr)
            except InvalidInput as invalid:
                self.db.rollback()
                show_problems(week, invalid)
            else:
                self.commit(gettext("Opening hours saved."))
                return redirect(url_for(".settings", calendar_id=calendar.id) + "#hours")
        return self._settings_page(calendar, self._settings_form(calendar), week, [], True, 422)

    @expose("/<int:calendar_id>/export.yaml")
    def export(self, calendar_id: int) -> Response:
        """The calendar as a calendar data file (``bookwise load``), for its admins: without
        the addresses of staff members' own calendars, which may hold a secret."""
        calendar = self._calendar(calendar_id, "admin")
        text = export_calendars(
            self.db, [calendar.slug], instance=instance().settings.base_url, now=now()
        )
        self.audit(
            "calendar.exported",
            object_type="calendar",
            object_id=calendar.slug,
            calendar_id=calendar.id,
            details={"format": "yaml"},
        )
        self.db.commit()
        return Response(
            text,
            mimetype="application/yaml",
            headers={
                "Content-Disposition": f'attachment; filename="{calendar.slug}.yaml"',
                "Cache-Control": "no-store",
            },
        )

    @expose("/<int:calendar_id>/clone", methods=("POST",))
    def clone(self, calendar_id: int) -> Any:
        access = self.access
        if not access.superadmin:
            deny(access, "clone calendar", calendar_id)
        calendar = self._calendar(calendar_id)
        form = CloneForm()
        if form.validate_on_submit():
            try:
                copy = clone_calendar(
                    self.db,
                    calendar,
                    (form.slug.data or "").strip().lower(),
                    (form.name.data or "").strip(),
                    self._locales(),
                    access.actor,
                    request.remote_addr,
                )
            except InvalidInput as invalid:
                self.db.rollback()
                for text in show_problems(form, invalid):
                    form.slug.errors = [*form.slug.errors, text]
            else:
                self.commit(
                    gettext(
                        "%(name)s created from %(source)s, unpublished: check it, then publish it.",
                        name=copy.name,
                        source=calendar.name,
                    )
                )
                from bookwise.admin.access import choose_calendar

                choose_calendar(copy.id)
                return redirect(url_for(".settings", calendar_id=copy.id))
        page = self._settings_page(
            calendar,
            self._settings_form(calendar),
            hours_form(_hours_data(calendar.hours)),
            [],
            True,
            422,
        )
        return page


def _stopped_message(stopped: bool) -> str:
    if not stopped:
        return gettext("There was no address to stop.")
    return gettext("The address is stopped: calendars subscribed to it get nothing from now on.")


def _iframe(url: str, title: str) -> str:
    return (
        f'<iframe src="{Markup.escape(url)}" title="{Markup.escape(title)}" '
        'width="100%" height="760" loading="lazy"></iframe>'
    )


# --- staff ---------------------------------------------------------------------------------


class StaffForm(Form):
    name = StringField(lazy_gettext("Name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(
        lazy_gettext("E-mail"),
        validators=[DataRequired(), Length(max=320)],
        description=lazy_gettext("The invitation and their booking notices go here."),
    )
    phone = TelField(lazy_gettext("Phone"), validators=[Length(max=40)])
    tags = StringField(
        lazy_gettext("Tags"),
        validators=[Length(max=400)],
        description=lazy_gettext(
            "Separated by commas, like doctor, french. Services pick their staff by tags."
        ),
    )
    bookable = BooleanField(lazy_gettext("Takes bookings"), default=True)


class TimeOffForm(Form):
    start = DateTimeLocalField(
        lazy_gettext("From"), format="%Y-%m-%dT%H:%M", validators=[DataRequired()]
    )
    end = DateTimeLocalField(
        lazy_gettext("Until"), format="%Y-%m-%dT%H:%M", validators=[DataRequired()]
    )
    reason = StringField(
        lazy_gettext("Reason"),
        validators=[Optional(), Length(max=500)],
        description=lazy_gettext("Sent to the staff member with the notice."),
    )


class CalendarAddressForm(Form):
    url = URLField(
        lazy_gettext("Address of the calendar"),
        validators=[DataRequired(), Length(max=2000)],
        description=lazy_gettext(
            'Outlook: Settings, Calendar, Shared calendars, "Publish a calendar", then the ICS '
            'link. Google Calendar: the calendar\'s settings, "Secret address in iCal format". '
            "Apple iCloud or Nextcloud: share the calendar publicly and copy its link. An "
            "address starting with webcal:// works too."
        ),
        render_kw={"placeholder": "https://", "spellcheck": "false", "autocomplete": "off"},
    )


class CaldavForm(Form):
    """A calendar on the organisation's CalDAV server, read with one of the service accounts of
    config.yaml (the form offers their names; their passwords never reach the database)."""

    url = URLField(
        lazy_gettext("Address of the calendar on the CalDAV server"),
        validators=[DataRequired(), Length(max=2000)],
        description=lazy_gettext(
            "The calendar collection's address. Nextcloud: "
            "https://cloud.example.org/remote.php/dav/calendars/USER/CALENDAR/ (the calendar's "
            '"Copy private link"). Fastmail: '
            "https://caldav.fastmail.com/dav/calendars/user/USER/CALENDAR-ID/."
        ),
        render_kw={"placeholder": "https://", "spellcheck": "false", "autocomplete": "off"},
        id="caldav_url",  # the address form on the same page has "url"
    )
    account = SelectField(lazy_gettext("Read with the account"), validators=[DataRequired()])


def caldav_form(accounts: Sequence[str], *, posted: bool) -> CaldavForm:
    """The CalDAV form offering the configured ``accounts`` by name; ``posted``: filled from
    the request, else blank."""
    form = CaldavForm() if posted else CaldavForm(formdata=None)
    form.account.choices = options(sorted(accounts))
    return form


class CalendarFileForm(Form):
    file = FileField(
        lazy_gettext("Calendar file (.ics)"),
        validators=[FileRequired(lazy_gettext("Choose a file to upload."))],
        description=lazy_gettext(
            "Exported from the calendar app. A file is read once: upload it again when the "
            "calendar changes, or add its address instead to have it read every few minutes."
        ),
        render_kw={"accept": ".ics,text/calendar"},
    )


class SourceForm(Form):
    """A button acting on one of a staff member's own calendars."""

    source_id = IntegerField(validators=[DataRequired()], widget=HiddenInput())


class RemoveForm(Form):
    mode = SelectField(
        lazy_gettext("Their future bookings"),
        choices=options(
            [
                ("reassign", lazy_gettext("Give them to other staff members")),
                (
                    "reassign_or_cancel",
                    lazy_gettext("Give them to others; cancel those no one can take"),
                ),
                ("cancel", lazy_gettext("Cancel them and tell the clients")),
            ]
        ),
        default="reassign",
    )
    reason = StringField(
        lazy_gettext("Reason given to clients whose booking is cancelled"),
        validators=[Optional(), Length(max=500)],
    )


def _staff_values(form: StaffForm) -> StaffValues:
    return StaffValues(
        name=(form.name.data or "").strip(),
        email=(form.email.data or "").strip(),
        phone=(form.phone.data or "").strip(),
        tags=parse_tags(form.tags.data or ""),
        bookable=bool(form.bookable.data),
    )


def _local(value: datetime, zone: str) -> datetime | None:
    """A wall time typed in the calendar's zone, as UTC (None outside the years we accept)."""
    if not 1971 <= value.year <= 2199:
        return None
    moment, _ = local_to_utc(value, ZoneInfo(zone))
    return moment


# The app refuses a body over 64 KiB before any view runs (bookwise.app.MAX_BODY; the CSRF check
# reads the form), and an exported calendar is often larger: its upload may reach the limit of
# bookwise.calendars.sources, for signed-in users (the view still checks who they are).
UPLOAD_ENDPOINT = "upload_calendar"
UPLOAD_BODY = MAX_FILE_BYTES + 64 * 1024


def _allow_calendar_uploads(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    if (
        endpoint is not None
        and endpoint.rsplit(".", 1)[-1] == UPLOAD_ENDPOINT
        and current_user.is_authenticated
    ):
        request.max_content_length = UPLOAD_BODY


def _source_rows(statuses: Sequence[SourceStatus], zone: str) -> list[dict[str, Any]]:
    """A staff member's own calendars as their page lists them, times in the calendar's zone."""
    locale = _locale()

    def when(moment: datetime | None) -> str | None:
        return format_when(moment, zone, locale) if moment is not None else None

    return [
        {
            "id": status.id,
            "label": status.label,
            "kind": status.kind,
            "account": status.account,
            "read_at": when(status.last_success_at),
            "tried": status.last_attempt_at is not None,
            "busy": status.busy,
            "problem": in_words(status.problem, gettext) if status.problem is not None else None,
            "failing_since": when(status.failing_since),
        }
        for status in statuses
    ]


def _refresh_message(outcome: RefreshOutcome | None) -> tuple[str, str]:
    """What reading one source came to, in words, and the category of its alert."""
    if outcome is None or outcome.outcome == "gone":
        return gettext("This calendar is no longer there: it was removed meanwhile."), "error"
    if outcome.outcome == "failed":
        problem = outcome.problem or Message(
            N_("The calendar could not be read (%(detail)s)."), {"detail": outcome.outcome}
        )
        return in_words(problem, gettext), "error"
    if outcome.outcome == "unchanged":
        return gettext("Unchanged since the last read."), "success"
    return ngettext(
        "Read: %(num)d busy time.", "Read: %(num)d busy times.", outcome.busy
    ), "success"


class StaffView(AdminView):
    need = "read"

    def create_blueprint(self, admin: Any) -> Any:
        blueprint = super().create_blueprint(admin)
        blueprint.url_value_preprocessor(_allow_calendar_uploads)
        return blueprint

    def _member(self, staff_id: int, need: str = "read") -> StaffMember:
        member = self.db.get(StaffMember, staff_id)
        if member is None:
            raise NotFound("no such staff member")
        access = self.access
        own = access.staff_id(member.calendar_id)
        if access.role(member.calendar_id) == "staff":
            if own != member.id or need == "admin":
                deny(access, "staff member", member.calendar_id, {"staff": staff_id})
            self.require(member.calendar_id, "read", "staff member")
        else:
            self.require(member.calendar_id, need, "staff member")  # type: ignore[arg-type]
        return member

    def _secret(self) -> str:
        return secret_key_of(instance().settings)

    @expose("/")
    def index(self) -> Any:
        calendar = self.calendar
        access = self.access
        own = access.staff_id(calendar.id)
        if access.role(calendar.id) == "staff":
            if own is None:
                return self.render("bookwise_admin/staff/list.html", members=[], admin=False)
            return redirect(url_for(".details", staff_id=own))
        members = sorted(
            (m for m in calendar.staff if m.removed_at is None), key=lambda m: m.name.casefold()
        )
        removed = [m for m in calendar.staff if m.removed_at is not None]
        return self.render(
            "bookwise_admin/staff/list.html",
            members=members,
            removed=removed,
            admin=access.allows(calendar.id, "admin"),
        )

    @expose("/new", methods=("GET", "POST"))
    def create(self) -> Any:
        calendar = self.calendar
        self.require(calendar.id, "admin", "add staff member")
        form = StaffForm()
        problems: list[str] = []
        if form.validate_on_submit():
            try:
                member = add_staff(
                    self.db,
                    calendar,
                    _staff_values(form),
                    secret=self._secret(),
                    base_url=instance().settings.base_url,
                    now=now(),
                    actor=self.access.actor,
                    ip=request.remote_addr,
                )
            except InvalidInput as invalid:
                self.db.rollback()
                problems = show_problems(form, invalid)
            else:
                self.commit(
                    gettext(
                        "%(name)s is invited by e-mail; they take bookings once they accept.",
                        name=member.name,
                    )
                )
                return redirect(url_for(".details", staff_id=member.id))
        return self.render(
            "bookwise_admin/staff/edit.html", form=form, member=None, problems=problems
        ), (422 if request.method == "POST" else 200)

    @expose("/<int:staff_id>/", methods=("GET", "POST"))
    def details(self, staff_id: int) -> Any:
        member = self._member(staff_id)
        access = self.access
        is_admin = access.allows(member.calendar_id, "admin")
        posted = request.method == "POST"
        if posted and not is_admin:
            deny(access, "edit staff member", member.calendar_id, {"staff": staff_id})
        form = StaffForm() if posted else _member_form(member)
        problems: list[str] = []
        status = 200
        if posted:
            if form.validate_on_submit():
                try:
                    changes = update_staff(
                        self.db,
                        member,
                        _staff_values(form),
                        secret=self._secret(),
                        base_url=instance().settings.base_url,
                        now=now(),
                        actor=access.actor,
                        ip=request.remote_addr,
                    )
                except InvalidInput as invalid:
                    self.db.rollback()
                    problems = show_problems(form, invalid)
                    status = 422
                else:
                    message = gettext("Saved.") if changes else gettext("Nothing changed.")
                    if "email" in changes:
                        message += " " + gettext("The new address is invited again.")
                    self.commit(message)
                    return redirect(url_for(".details", staff_id=member.id))
            else:
                status = 422
        return self._details_page(member, form, problems=problems, status=status)

    def _details_page(
        self,
        member: StaffMember,
        form: Any,
        week: Any = None,
        time_off_form: Any = None,
        problems: list[str] | None = None,
        status: int = 200,
        source_form: Form | None = None,
        feed_address: str | None = None,
    ) -> Any:
        """The staff member's page; ``source_form``: the own-calendar form just posted, shown
        with its errors; ``feed_address``: the feed address just made, shown this once."""
        access = self.access
        calendar = member.calendar
        locale = _locale()
        zone = calendar.timezone
        is_admin = access.allows(member.calendar_id, "admin")
        is_self = access.staff_id(member.calendar_id) == member.id
        # Their own calendars and their feed: for the calendar's admins and for themselves.
        own_calendars = is_admin or is_self
        own_hours = list(member.hours)
        return self.render(
            "bookwise_admin/staff/edit.html",
            member=member,
            form=form,
            problems=problems or [],
            admin=is_admin,
            week=week or hours_form(_hours_data(own_hours or calendar.hours)),
            uses_calendar_hours=member.uses_calendar_hours or not own_hours,
            time_off=[
                {
                    "row": t,
                    "start": format_when(t.start_at, zone, locale),
                    "end": format_when(t.end_at, zone, locale),
                }
                for t in member.time_off
                if t.end_at > now()
            ],
            time_off_form=time_off_form or TimeOffForm(),
            may_add_time_off=is_admin or is_self,
            action_form=ActionForm(),
            zone=zone,
            own_calendars=own_calendars,
            sources=_source_rows(source_statuses(self.db, staff_id=member.id), zone)
            if own_calendars
            else [],
            address_form=source_form
            if isinstance(source_form, CalendarAddressForm)
            else CalendarAddressForm(formdata=None),
            file_form=source_form
            if isinstance(source_form, CalendarFileForm)
            else CalendarFileForm(formdata=None),
            caldav_form=(
                source_form
                if isinstance(source_form, CaldavForm)
                else caldav_form(self._caldav_accounts(), posted=False)
            )
            if self._caldav_accounts()
            else None,
            feed=feed_panel(active_link(self.db, calendar, member), zone, feed_address)
            if own_calendars
            else None,
        ), status

    @expose("/<int:staff_id>/hours", methods=("POST",))
    def hours(self, staff_id: int) -> Any:
        member = self._member(staff_id, "admin")
        week = hours_form()
        if not week.validate_on_submit():
            deny(self.access, "staff hours without a valid form", member.calendar_id)
        own = request.form.get("own_hours") == "1"
        hours = _read_hours(week) if own else []
        if hours is not None:
            try:
                set_hours(
                    self.db, member.calendar, member, hours, self.access.actor, request.remote_addr
                )
            except InvalidInput as invalid:
                self.db.rollback()
                show_problems(week, invalid)
            else:
                self.commit(gettext("Working hours saved."))
                return redirect(url_for(".details", staff_id=member.id) + "#hours")
        return self._details_page(member, _member_form(member), week=week, status=422)

    @expose("/<int:staff_id>/time-off", methods=("POST",))
    def time_off(self, staff_id: int) -> Any:
        member = self._member(staff_id, "staff")
        form = TimeOffForm()
        zone = member.calendar.timezone
        if form.validate_on_submit():
            start = _local(form.start.data, zone)
            end = _local(form.end.data, zone)
            if start is None or end is None:
                form.start.errors = [gettext("Choose a date between 1971 and 2199.")]
            else:
                try:
                    _, clashes = add_time_off(
                        self.db,
                        member,
                        start,
                        end,
                        form.reason.data or "",
                        now=now(),
                        actor=self.access.actor,
                        ip=request.remote_addr,
                    )
                except InvalidInput as invalid:
                    self.db.rollback()
                    show_problems(form, invalid)
                else:
                    message = gettext("Time off recorded; %(name)s is notified.", name=member.name)
                    if clashes:
                        message += " " + ngettext(
                            "%(num)d booking already falls in this time: move or reassign it.",
                            "%(num)d bookings already fall in this time: move or reassign them.",
                            len(clashes),
                        )
                    self.commit(message)
                    return redirect(url_for(".details", staff_id=member.id) + "#time-off")
        return self._details_page(member, _member_form(member), time_off_form=form, status=422)

    @expose("/<int:staff_id>/time-off/<int:time_off_id>/delete", methods=("POST",))
    def delete_time_off(self, staff_id: int, time_off_id: int) -> Response:
        member = self._member(staff_id, "staff")
        time_off = self.db.get(TimeOff, time_off_id)
        if time_off is None or time_off.staff_id != member.id:
            deny(self.access, "time off of someone else", member.calendar_id)
        if not ActionForm().validate_on_submit():
            deny(self.access, "delete time off without a valid form", member.calendar_id)
        remove_time_off(self.db, time_off, self.access.actor, request.remote_addr)
        self.commit(gettext("Time off removed."))
        return redirect(url_for(".details", staff_id=member.id) + "#time-off")

    # --- their own calendars, read for busy times --------------------------------------------

    def _source(self, member: StaffMember, what: str) -> CalendarSource:
        """The member's source that the button names; 403 (recorded) for another's or a form
        without its token."""
        form = SourceForm()
        if not form.validate_on_submit():
            deny(self.access, f"{what} without a valid form", member.calendar_id)
        source = self.db.get(CalendarSource, form.source_id.data)
        if source is None or source.staff_id != member.id:
            deny(self.access, "calendar of someone else", member.calendar_id)
        return source

    def _read_now(self, source_id: int) -> None:
        """Read one source at once (after the commit: the read does its own transactions) and
        say how it went."""
        bookwise = instance()
        outcomes = refresh_sources(
            bookwise.database.sessions, bookwise.settings.feeds, now(), force=True, ids=[source_id]
        )
        flash(*_refresh_message(outcomes[0] if outcomes else None))

    def _caldav_accounts(self) -> list[str]:
        """The names of the CalDAV accounts of config.yaml (none: no CalDAV form)."""
        return sorted(instance().settings.feeds.caldav_accounts)

    def _calendars_anchor(self, member: StaffMember) -> Response:
        return redirect(url_for(".details", staff_id=member.id) + "#calendars")

    @expose("/<int:staff_id>/calendars/address", methods=("POST",))
    def add_calendar_address(self, staff_id: int) -> Any:
        """Add a calendar's address and read it at once; one that cannot be read is added all
        the same, its problem shown (the person sees why, and it is tried again)."""
        member = self._member(staff_id, "staff")
        form = CalendarAddressForm()
        return self._add_and_read(
            member,
            form,
            lambda: add_url_source(
                self.db, member, form.url.data or "", actor=self.actor, now=now()
            ),
        )

    @expose("/<int:staff_id>/calendars/caldav", methods=("POST",))
    def add_caldav_calendar(self, staff_id: int) -> Any:
        """Add a calendar on the CalDAV server and read it at once; like an address, one that
        cannot be read is added all the same, its problem shown."""
        member = self._member(staff_id, "staff")
        accounts = self._caldav_accounts()
        if not accounts:
            deny(self.access, "CalDAV calendar without an account configured", member.calendar_id)
        form = caldav_form(accounts, posted=True)
        return self._add_and_read(
            member,
            form,
            lambda: add_caldav_source(
                self.db,
                member,
                form.url.data or "",
                form.account.data or "",
                actor=self.actor,
                now=now(),
                settings=instance().settings.feeds,
            ),
        )

    def _add_and_read(
        self, member: StaffMember, form: Any, add: Callable[[], CalendarSource]
    ) -> Any:
        """The posted address form: add the source (``add``), commit, read it at once; a refusal
        is shown beside the address field, nothing written."""
        if form.validate_on_submit():
            try:
                source = add()
            except SourceRefused as refused:
                self.db.rollback()
                form.url.errors = [*form.url.errors, in_words(refused.message, gettext)]
            else:
                source_id, label = source.id, source.label
                self.commit(gettext("Calendar added: %(label)s.", label=label))
                self._read_now(source_id)
                return self._calendars_anchor(member)
        return self._details_page(member, _member_form(member), source_form=form, status=422)

    @expose("/<int:staff_id>/calendars/file", methods=("POST",))
    def upload_calendar(self, staff_id: int) -> Any:
        member = self._member(staff_id, "staff")
        form = CalendarFileForm()
        if form.validate_on_submit():
            upload = form.file.data
            try:
                source = add_file_source(
                    self.db,
                    member,
                    upload.filename or "",
                    upload.read(MAX_FILE_BYTES + 1),
                    actor=self.actor,
                    now=now(),
                )
            except SourceRefused as refused:
                self.db.rollback()
                form.file.errors = [*form.file.errors, in_words(refused.message, gettext)]
            else:
                self.commit(
                    gettext("Calendar added: %(label)s.", label=source.label)
                    + " "
                    + ngettext(
                        "Read: %(num)d busy time.", "Read: %(num)d busy times.", source.busy_count
                    )
                )
                return self._calendars_anchor(member)
        return self._details_page(member, _member_form(member), source_form=form, status=422)

    @expose("/<int:staff_id>/calendars/refresh", methods=("POST",))
    def refresh_calendar(self, staff_id: int) -> Response:
        member = self._member(staff_id, "staff")
        source_id = self._source(member, "refresh calendar").id
        self.db.rollback()  # nothing held open while the address is read
        self._read_now(source_id)
        return self._calendars_anchor(member)

    @expose("/<int:staff_id>/calendars/remove", methods=("POST",))
    def remove_calendar(self, staff_id: int) -> Response:
        member = self._member(staff_id, "staff")
        source = self._source(member, "remove calendar")
        label = source.label
        remove_source(self.db, source, actor=self.actor)
        self.commit(gettext("%(label)s removed: its busy times are free again.", label=label))
        return self._calendars_anchor(member)

    # --- the feed of their bookings -----------------------------------------------------------

    @expose("/<int:staff_id>/subscribe", methods=("POST",))
    def make_feed(self, staff_id: int) -> Any:
        """A new private address of the member's bookings (ending the one before), shown in
        this answer only."""
        member = self._member(staff_id, "staff")
        if not ActionForm().validate_on_submit():
            deny(self.access, "staff feed without a valid form", member.calendar_id)
        address = create_link(
            self.db,
            member.calendar,
            member,
            actor=self.actor,
            now=now(),
            base_url=instance().settings.base_url,
        )
        self.commit()
        return self._details_page(member, _member_form(member), feed_address=address)

    @expose("/<int:staff_id>/subscribe/stop", methods=("POST",))
    def stop_feed(self, staff_id: int) -> Response:
        member = self._member(staff_id, "staff")
        if not ActionForm().validate_on_submit():
            deny(self.access, "stop staff feed without a valid form", member.calendar_id)
        stopped = stop_link(self.db, member.calendar, member, actor=self.actor, now=now())
        self.commit(_stopped_message(stopped))
        return redirect(url_for(".details", staff_id=member.id) + "#subscribe")

    @expose("/<int:staff_id>/invite", methods=("POST",))
    def invite(self, staff_id: int) -> Response:
        member = self._member(staff_id, "admin")
        if not ActionForm().validate_on_submit():
            deny(self.access, "invite without a valid form", member.calendar_id)
        invite_again(
            self.db,
            member,
            secret=self._secret(),
            base_url=instance().settings.base_url,
            now=now(),
            actor=self.actor,
        )
        self.commit(gettext("The invitation is sent again to %(email)s.", email=member.email))
        return redirect(url_for(".details", staff_id=member.id))

    @expose("/<int:staff_id>/remove", methods=("GET", "POST"))
    def remove(self, staff_id: int) -> Any:
        member = self._member(staff_id, "admin")
        if member.removed_at is not None:
            return redirect(url_for(".index"))
        form = RemoveForm()
        locale = _locale()
        stuck: list[Any] = []
        if form.validate_on_submit():
            session = self.db
            session.rollback()
            begin_write(session)  # bookings are moved or cancelled: a writer from the start
            member = self._member(staff_id, "admin")
            try:
                result = remove_staff(
                    session,
                    member,
                    form.mode.data,
                    now=now(),
                    actor=self.actor,
                    booking_actor=self.access.booking_actor,
                    reason=(form.reason.data or "").strip() or None,
                    plugins=plugin_host(),
                )
            except CannotReassign as cannot:
                stuck = booking_rows(cannot.bookings, locale)
                session.rollback()
                member = self._member(staff_id, "admin")
            else:
                self.commit(
                    gettext("%(name)s is removed.", name=member.name)
                    + " "
                    + ngettext(
                        "%(num)d booking given to others.",
                        "%(num)d bookings given to others.",
                        len(result.reassigned),
                    )
                    + " "
                    + ngettext(
                        "%(num)d booking cancelled.",
                        "%(num)d bookings cancelled.",
                        len(result.cancelled),
                    )
                )
                return redirect(url_for(".index"))
        upcoming = booking_rows(future_bookings(self.db, member, now()), locale)
        return self.render(
            "bookwise_admin/staff/remove.html",
            member=member,
            form=form,
            upcoming=upcoming,
            stuck=stuck,
            modes=REMOVAL_MODES,
        ), (409 if stuck else 200)


def _member_form(member: StaffMember) -> StaffForm:
    return StaffForm(
        formdata=None,
        data={
            "name": member.name,
            "email": member.email,
            "phone": member.phone or "",
            "tags": ", ".join(member.tags),
            "bookable": member.bookable,
        },
    )


# --- services ------------------------------------------------------------------------------


class ServicesView(AdminView):
    need = "view"

    @expose("/")
    def index(self) -> str:
        calendar = self.calendar
        locale = _locale()
        rows = []
        for service in calendar.services:
            workflow = workflow_of(service.workflow.versions[-1])
            if service.pool_by_tags:
                members = [
                    m
                    for m in calendar.staff
                    if set(workflow.staff.tags) <= set(m.tags) and m.removed_at is None
                ]
            else:
                members = [link.staff_member for link in service.staff_links]
            rows.append(
                {
                    "service": service,
                    "name": workflow_name(workflow, locale, calendar.default_locale),
                    "workflow": workflow,
                    "members": members,
                }
            )
        rows.sort(key=lambda r: str(r["name"]).casefold())
        return self.render(
            "bookwise_admin/services/list.html",
            rows=rows,
            admin=self.access.allows(calendar.id, "admin"),
            calendar=calendar,
        )

    @expose("/<int:service_id>/", methods=("GET", "POST"))
    def edit(self, service_id: int) -> Any:
        service = self.db.get(Service, service_id)
        if service is None:
            raise NotFound("no such service")
        access = self.access
        self.require(service.calendar_id, "view", "service")
        editable = access.allows(service.calendar_id, "admin")
        calendar = service.calendar
        workflow = workflow_of(service.workflow.versions[-1])
        problems: list[str] = []
        status = 200
        if request.method == "POST":
            if not editable:
                deny(access, "edit service", service.calendar_id)
            if not ActionForm().validate_on_submit():
                deny(access, "edit service without a valid form", service.calendar_id)
            ordered = [int(v) for v in request.form.getlist("staff") if v.isdigit() and len(v) < 12]
            try:
                update_service(
                    self.db,
                    service,
                    active=request.form.get("active") == "1",
                    pool_by_tags=request.form.get("pool") != "listed",
                    staff_ids=ordered,
                    actor=access.actor,
                    ip=request.remote_addr,
                )
            except InvalidInput as invalid:
                self.db.rollback()
                problems = [m.translate(gettext) for m in invalid.problems.values()]
                status = 422
            except NotFound:
                self.db.rollback()
                deny(access, "staff of another calendar", service.calendar_id)
            else:
                self.commit(gettext("Saved."))
                return redirect(url_for(".index"))
        listed = [link.staff_id for link in service.staff_links]
        members = [m for m in calendar.staff if m.removed_at is None]
        members.sort(
            key=lambda m: (m.id not in listed, listed.index(m.id) if m.id in listed else 0, m.name)
        )
        return self.render(
            "bookwise_admin/services/edit.html",
            service=service,
            name=workflow_name(workflow, _locale(), calendar.default_locale),
            workflow=workflow,
            members=members,
            listed=listed,
            # Who the tags pick, by the rule the bookings follow (availability.read_pool).
            tagged=[
                m
                for m in members
                if m.bookable
                and m.invitation == "accepted"
                and set(workflow.staff.tags) <= set(m.tags)
            ],
            editable=editable,
            problems=problems,
            form=ActionForm(),
        ), status
