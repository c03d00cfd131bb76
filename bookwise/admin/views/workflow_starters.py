"""How a new scenario starts in the back office: a chooser (the shipped starters, a blank one, the
guided wizard) and the wizard itself, six numbered steps on one page that work without
JavaScript (:mod:`bookwise.workflows.starters` turns the answers into the editor's values).

The wizard's scenario is checked like the editor's (``WorkflowsView._check``), created as
version 1 in the current calendar, unpublished, with the staff chosen as its service's pool,
and then opened in the structured editor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from flask import redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale, lazy_gettext
from sqlalchemy import select
from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms import Form as PlainForm
from wtforms.validators import Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from bookwise.admin.access import deny
from bookwise.admin.base import Form, options, per_language
from bookwise.admin.durations import DurationField
from bookwise.calendars.editing import create_calendar_workflow, update_service
from bookwise.calendars.models import Service, StaffMember
from bookwise.durations import parse_duration
from bookwise.errors import NotFound, Problem, errors_only
from bookwise.i18n import gettext, language_name
from bookwise.text import slugify, unstorable_text
from bookwise.web import instance
from bookwise.workflows.editing import problem_path, problem_text, write
from bookwise.workflows.services import latest_version, workflows_of_calendars
from bookwise.workflows.starters import (
    CLIENT_CHOOSES,
    MAX_QUESTIONS,
    Question,
    WizardAnswers,
    find_starter,
    free_identifier,
    from_answers,
    starters,
    with_identifier,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bookwise.calendars.models import Calendar
    from bookwise.workflows.loader import CheckedWorkflow
    from bookwise.workflows.models import WorkflowRecord

QUESTION_TYPE_LABELS = {
    "short_text": lazy_gettext("Short text"),
    "long_text": lazy_gettext("Long text"),
    "choice": lazy_gettext("One choice from a list"),
    "yes_no": lazy_gettext("Yes or no (a checkbox)"),
    "date": lazy_gettext("Date"),
    "number": lazy_gettext("Number"),
}
# Where the appointment takes place (the workflow language's location types).
WHERE_LABELS = {
    "in_person": lazy_gettext("In person, at the calendar's address"),
    "online": lazy_gettext("Online"),
    "phone": lazy_gettext("By phone"),
}
LINK = re.compile(r"^https?://\S+$")


def _locales() -> tuple[str, ...]:
    return tuple(instance().settings.locales)


def _text(texts: dict[str, str], locale: str, fallback: str) -> str:
    return texts.get(locale) or texts.get(fallback) or next(iter(texts.values()), "")


# --- the wizard's form ------------------------------------------------------------------------


def wizard_form(
    locales: tuple[str, ...],
    members: list[tuple[int, str]],
    strategies: list[tuple[str, Any]],
    sms: bool,
    providers: Sequence[tuple[str, Any]] = (),
) -> type[Form]:
    """The wizard's form class for the calendar's languages, bookable staff (id, name), the
    assignment strategies (name, label), whether text messages can be sent and the enabled
    meeting providers (name, label: none, and an online meeting has a fixed link)."""

    class QuestionForm(PlainForm):  # type: ignore[misc]
        kind = SelectField(
            lazy_gettext("Type"),
            choices=options(QUESTION_TYPE_LABELS.items()),
            default="short_text",
        )
        required = BooleanField(lazy_gettext("An answer is required"))
        sensitive = BooleanField(lazy_gettext("Sensitive (health, HR data)"))

    per_language(
        QuestionForm,
        "label",
        locales,
        lambda c: lazy_gettext("Question (%(language)s)", language=c),
        500,
    )
    per_language(
        QuestionForm,
        "choices",
        locales,
        lambda c: lazy_gettext("Choices, one per line (%(language)s)", language=c),
        2000,
        rows=3,
    )

    class WizardForm(Form):
        group = RadioField(
            lazy_gettext("Who books"),
            choices=options(
                [
                    ("one", lazy_gettext("One client at a time")),
                    ("group", lazy_gettext("A group: several clients book a place each")),
                ]
            ),
            default="one",
        )
        places = IntegerField(
            lazy_gettext("Places in the group"),
            validators=[Optional(), NumberRange(min=2, max=1000)],
        )
        approval = RadioField(
            lazy_gettext("Bookings are"),
            choices=options(
                [
                    ("instant", lazy_gettext("Confirmed at once")),
                    ("approval", lazy_gettext("Requested, then approved by a staff member")),
                ]
            ),
            default="instant",
        )
        duration = DurationField(lazy_gettext("How long"), validators=[Length(max=20)])
        max_ahead = DurationField(
            lazy_gettext("Clients may book up to this far ahead"),
            validators=[Length(max=20)],
            default_unit="d",
            description=lazy_gettext("Empty: 90 days."),
        )
        location = RadioField(
            lazy_gettext("Where"), choices=options(WHERE_LABELS.items()), default="in_person"
        )
        meeting_link = StringField(
            lazy_gettext("The fixed link"),
            validators=[Length(max=500)],
            description=lazy_gettext(
                "The same link for every booking, like https://meet.example.org/office."
            ),
        )
        staff = SelectMultipleField(
            lazy_gettext("Staff members"),
            choices=options([(str(i), name) for i, name in members]),
            widget=ListWidget(prefix_label=False),
            option_widget=CheckboxInput(),
            validate_choice=False,
            description=lazy_gettext("None ticked: every staff member of the calendar."),
        )
        assignment = RadioField(
            lazy_gettext("Who serves a client"),
            choices=options([(CLIENT_CHOOSES, lazy_gettext("The client chooses")), *strategies]),
            default="round_robin",
        )
        questions = FieldList(
            FormField(QuestionForm), min_entries=MAX_QUESTIONS, max_entries=MAX_QUESTIONS
        )
        consent = RadioField(
            lazy_gettext("Consent"),
            choices=options(
                [
                    ("none", lazy_gettext("No consent asked")),
                    ("ask", lazy_gettext("Ask for consent before booking")),
                ]
            ),
            default="none",
        )
        consent_link = StringField(
            lazy_gettext("Link to the privacy notice"), validators=[Length(max=500)]
        )
        delete_answers_after = DurationField(
            lazy_gettext("Erase the answers this long after the appointment"),
            validators=[Length(max=20)],
            default_unit="d",
            description=lazy_gettext("Empty: kept until erased by hand. A year: 365 days."),
        )
        day_before_email = BooleanField(lazy_gettext("A reminder by e-mail a day before"))
        follow_up = BooleanField(lazy_gettext("A follow-up message after the visit"))

    per_language(
        WizardForm, "name", locales, lambda c: lazy_gettext("Name (%(language)s)", language=c), 200
    )
    per_language(
        WizardForm,
        "consent_text",
        locales,
        lambda c: lazy_gettext("Consent text (%(language)s)", language=c),
        2000,
        rows=2,
    )
    if providers:
        WizardForm.meeting_provider = SelectField(
            lazy_gettext("Meeting link"),
            choices=options([*providers, ("", lazy_gettext("The fixed link below"))]),
            default=providers[0][0],
        )
    if sms:
        WizardForm.two_hours_sms = BooleanField(
            lazy_gettext("A reminder by text message two hours before")
        )
    return WizardForm


def _inputs(form: Any) -> Iterator[Any]:
    """Every input of the form, those of the questions included."""
    for item in form:
        if item.type == "FieldList":
            for entry in item.entries:
                yield from entry.form
        elif item.type != "CSRFTokenField":
            yield item


def _refuse_unstorable(form: Any) -> None:
    """A text with a character that cannot be stored is refused where it was typed."""
    for item in _inputs(form):
        if item.type in ("StringField", "TextAreaField", "DurationField") and item.data:
            problem = unstorable_text(str(item.data), multiline=item.type == "TextAreaField")
            if problem is not None:
                item.errors = [*item.errors, problem.translate(gettext)]


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _texts(form: Any, prefix: str, locales: tuple[str, ...]) -> dict[str, str]:
    return {
        c: (form[f"{prefix}_{c}"].data or "").strip() for c in locales if form[f"{prefix}_{c}"].data
    }


def _question(sub: Any, locales: tuple[str, ...]) -> Question | None:
    """One question as answered (None when left empty); its problems go beside its inputs."""
    label = {c: t for c, t in _texts(sub, "label", locales).items() if t}
    kind = sub.kind.data if sub.kind.data in QUESTION_TYPE_LABELS else "short_text"
    lines = {c: _lines(sub[f"choices_{c}"].data) for c in locales}
    if kind != "choice":  # the choices are not asked (hidden) for another type: ignored
        lines = {c: [] for c in locales}
        for code in locales:
            sub[f"choices_{code}"].errors = []
    if not label:
        if any(lines.values()):
            sub[f"label_{locales[0]}"].errors.append(gettext("Write the question."))
        return None
    choices: list[dict[str, str]] = []
    if kind == "choice":
        counts = {len(found) for found in lines.values() if found}
        if not counts or max(counts) < 2:
            sub[f"choices_{locales[0]}"].errors.append(
                gettext("Give at least two choices, one per line.")
            )
        elif len(counts) > 1:
            _short_languages(sub, lines)
        else:
            size = counts.pop()
            choices = [{c: found[i] for c, found in lines.items() if found} for i in range(size)]
    return Question(label, kind, choices, bool(sub.required.data), bool(sub.sensitive.data))


def _short_languages(sub: Any, lines: dict[str, list[str]]) -> None:
    """Beside the choices of each language that has fewer than another: how many each has."""
    locale = str(get_locale())
    most = max(lines, key=lambda code: len(lines[code]))
    for code, found in lines.items():
        if found and len(found) < len(lines[most]):
            sub[f"choices_{code}"].errors.append(
                gettext(
                    "%(short)s has %(count)s choices, %(long)s has %(most)s: give as many "
                    "in each language.",
                    short=language_name(code, locale).capitalize(),
                    count=len(found),
                    long=language_name(most, locale),
                    most=len(lines[most]),
                )
            )


def _check_answers(form: Any, locales: tuple[str, ...]) -> list[Question]:
    """What the form's validators cannot say: a name, a duration, the questions, consent."""
    if not any(_texts(form, "name", locales).values()):
        form[f"name_{locales[0]}"].errors.append(gettext("Give the scenario a name."))
    if form.group.data != "group":
        form.places.errors = []  # not asked (hidden) for one client at a time: ignored
    elif not form.places.data and not form.places.errors:
        form.places.errors.append(gettext("Say how many places the group has."))
    _check_where(form)
    for item in (form.duration, form.max_ahead, form.delete_answers_after):
        if item.errors or not item.data:
            continue
        try:
            positive = parse_duration(item.data).total_seconds() > 0
        except ValueError:
            positive = False
        if not positive:
            item.errors.append(gettext("Give a whole number above zero."))
    if not form.duration.data and not form.duration.errors:
        form.duration.errors.append(gettext("Say how long a booking lasts."))
    if form.consent.data == "ask" and not any(_texts(form, "consent_text", locales).values()):
        form[f"consent_text_{locales[0]}"].errors.append(
            gettext("Write what the client agrees to.")
        )
    questions = [_question(entry.form, locales) for entry in form.questions.entries]
    return [q for q in questions if q is not None]


def _check_where(form: Any) -> None:
    """An online appointment needs its link: made by the provider chosen, or the one typed."""
    link = (form.meeting_link.data or "").strip()
    provider = form.meeting_provider.data if "meeting_provider" in form else ""
    if form.location.data != "online":
        for name in ("meeting_link", "meeting_provider"):
            if name in form:
                form[name].errors = []  # not asked (hidden) for another place: ignored
        return
    if form.meeting_link.errors:
        return
    if link and not LINK.match(link):
        form.meeting_link.errors.append(
            gettext("Give the meeting's whole address, starting with https://.")
        )
    elif not link and not provider:
        form.meeting_link.errors.append(gettext("Type the link of the online meetings."))


def _has_errors(form: Any) -> bool:
    return any(item.errors for item in _inputs(form))


# --- the view ----------------------------------------------------------------------------------


class StartersMixin:
    """The chooser of a new scenario and the guided wizard, for :class:`WorkflowsView`."""

    if TYPE_CHECKING:
        db: Session
        calendar: Calendar
        access: Any
        actor: Any

        def render(self, template: str, **kwargs: Any) -> Any: ...
        def require(self, calendar_id: int | None, need: Any, what: str) -> None: ...
        def commit(self, message: str | None = None) -> None: ...
        def _check(
            self, text: str, slug: str, record: WorkflowRecord | None
        ) -> tuple[CheckedWorkflow | None, list[Problem]]: ...

    def _chooser(self) -> Any:
        """The page that opens "New scenario": the starters, a blank one, the wizard."""
        locale = str(get_locale())
        fallback = self.calendar.default_locale
        offered = [
            {
                "key": s.key,
                "name": _text(s.name, locale, fallback),
                "description": _text(s.description, locale, fallback),
            }
            for s in starters()
        ]
        return self.render("bookwise_admin/workflows/new.html", starters=offered)

    def _starter_text(self, key: str) -> str | None:
        """The text a new scenario's editor writes into: none for a blank one, else the
        starter's, with an identifier no workflow has yet (404 for an unknown starter)."""
        if key in ("", "blank"):
            return None
        starter = find_starter(key)
        if starter is None:
            raise NotFound(f"no starter {key[:64]}")
        return with_identifier(starter, free_identifier(key, self._taken()))

    def _taken(self) -> set[str]:
        return {record.slug for record in workflows_of_calendars(self.db, None)}

    @expose("/new/guided", methods=("GET", "POST"))
    def guided(self) -> Any:
        calendar = self.calendar
        self.require(calendar.id, "admin", "create workflow")
        locales = _locales()
        members = sorted(
            (m for m in calendar.staff if m.removed_at is None and m.bookable),
            key=lambda m: m.name.casefold(),
        )
        form = self._wizard_form(locales, members)()
        if request.method == "GET":
            return self._wizard_page(form, [], locales)
        if not form.validate_on_submit() and form.csrf_token.errors:
            deny(self.access, "scenario wizard without a valid form", calendar.id)
        _refuse_unstorable(form)
        questions = _check_answers(form, locales)
        self._refuse_a_taken_name(form, locales)
        if _has_errors(form):
            return self._wizard_page(form, [], locales, 422)
        answers = self._answers(form, questions, locales)
        text = write(from_answers(answers, locales), None, locales[0])
        checked, problems = self._check(text, answers.identifier, None)
        if checked is None or errors_only(problems):
            loose = self._attach(form, errors_only(problems), locales)
            return self._wizard_page(form, loose, locales, 422)
        record = create_calendar_workflow(
            self.db, checked, calendar, origin="admin", actor=self.actor
        )
        chosen = [int(v) for v in form.staff.data or [] if v.isdigit() and len(v) < 12]
        known = [m.id for m in members if m.id in chosen]
        if known:
            service = self.db.scalars(
                select(Service).where(
                    Service.calendar_id == calendar.id, Service.workflow_id == record.id
                )
            ).one()
            update_service(
                self.db,
                service,
                active=False,
                pool_by_tags=False,
                staff_ids=known,
                actor=self.access.actor,
                ip=request.remote_addr,
            )
        self.commit(
            gettext(
                "Scenario created (version 1). Publish it when it is ready: clients cannot "
                "book it yet."
            )
        )
        return redirect(url_for(".edit", slug=record.slug))

    def _refuse_a_taken_name(self, form: Any, locales: tuple[str, ...]) -> None:
        """A name (in any language) that a scenario of the calendar has already is refused
        beside its box: two scenarios would look the same to the staff and the clients."""
        taken: dict[str, str] = {}
        for record in workflows_of_calendars(self.db, [self.calendar.id]):
            version = None if record.archived else latest_version(self.db, record.id)
            name = version.definition.get("name") if version is not None else None
            texts = name.values() if isinstance(name, dict) else [name] if name else []
            taken.update({str(text).strip().casefold(): str(text).strip() for text in texts})
        for code, text in _texts(form, "name", locales).items():
            if text.casefold() in taken:
                form[f"name_{code}"].errors.append(
                    gettext(
                        "A scenario called “%(name)s” exists already; give this one another "
                        "name, or open that one.",
                        name=taken[text.casefold()],
                    )
                )

    def _wizard_form(self, locales: tuple[str, ...], members: list[StaffMember]) -> type[Form]:
        from bookwise.admin.views.workflows import (
            STRATEGY_LABELS,
            STRATEGY_ORDER,
            _context,
            _provider_label,
        )

        sms = "sms" in instance().database.plugins.channel_names
        strategies = [(name, STRATEGY_LABELS[name]) for name in STRATEGY_ORDER]
        providers = [
            (name, _provider_label(name)) for name in sorted(_context().meeting_providers or ())
        ]
        return wizard_form(locales, [(m.id, m.name) for m in members], strategies, sms, providers)

    def _answers(
        self, form: Any, questions: list[Question], locales: tuple[str, ...]
    ) -> WizardAnswers:
        name = _texts(form, "name", locales)
        wanted = slugify(next(text for text in (name.get(c, "") for c in locales) if text))
        identifier = free_identifier(wanted[:63].strip("-") or "scenario", self._taken())
        asks = form.consent.data == "ask"
        online = form.location.data == "online"
        return WizardAnswers(
            name=name,
            identifier=identifier,
            places=(form.places.data or 2) if form.group.data == "group" else 1,
            approval=form.approval.data == "approval",
            duration=form.duration.data,
            max_ahead=form.max_ahead.data or "",
            location=form.location.data if form.location.data in WHERE_LABELS else "in_person",
            meeting_provider=(form.meeting_provider.data or "")
            if online and "meeting_provider" in form
            else "",
            meeting_link=(form.meeting_link.data or "").strip() if online else "",
            assignment=form.assignment.data or "round_robin",
            questions=questions,
            consent_text=_texts(form, "consent_text", locales) if asks else {},
            consent_link=(form.consent_link.data or "").strip() if asks else "",
            delete_answers_after=form.delete_answers_after.data or "",
            day_before_email=bool(form.day_before_email.data),
            two_hours_sms=bool(getattr(form, "two_hours_sms", None) and form.two_hours_sms.data),
            follow_up=bool(form.follow_up.data),
        )

    def _attach(
        self, form: Any, problems: list[Problem], locales: tuple[str, ...]
    ) -> list[Problem]:
        """Put the check's problems beside the wizard's inputs; return those none shows."""
        places = {
            "id": f"name_{locales[0]}",
            "name": f"name_{locales[0]}",
            "duration": "duration",
            "booking_window": "max_ahead",
            "capacity": "places",
            "consent": f"consent_text_{locales[0]}",
            "notifications": "day_before_email",
            "location": "location",
            "retention": "delete_answers_after",
        }
        loose = []
        for problem in problems:
            path = problem_path(problem)
            name = places.get(str(path[0])) if path else None
            if path[:2] == ("consent", "link"):
                name = "consent_link"
            elif path[:2] in (("location", "url"), ("location", "provider")):
                name = "meeting_link" if path[1] == "url" else "meeting_provider"
            if name is None or name not in form:
                loose.append(problem)
                continue
            form[name].errors = [*form[name].errors, problem_text(problem)]
        return loose

    def _wizard_page(
        self, form: Any, loose: list[Problem], locales: tuple[str, ...], status: int = 200
    ) -> Any:
        errors = [
            (item.id, item.label.text, message) for item in _inputs(form) for message in item.errors
        ]
        return self.render(
            "bookwise_admin/workflows/wizard.html",
            form=form,
            locales=locales,
            errors=errors,
            loose=loose,
            shown_languages=self._languages_shown(form, locales),
            language_names={code: language_name(code, str(get_locale())) for code in locales},
        ), status

    def _languages_shown(self, form: Any, locales: tuple[str, ...]) -> list[str]:
        """The languages whose boxes show at first: the calendar's, the instance's default, and
        those with a text or a problem (the others are a tick away, as in the editor)."""
        from bookwise.admin.views.workflows import _languages_shown

        shown = set(_languages_shown(form, locales, self.calendar.default_locale))
        for item in _inputs(form):
            code = item.name.rpartition("_")[2]
            if item.errors and code in locales:
                shown.add(code)
        return [code for code in locales if code in shown]
