"""Scenarios (workflows) in the back office, without code: a structured editor for the common
keys, a YAML editor for the rest, versions with their diffs and a one-click restore, import,
export, and a preview of the public form.

Both editors produce YAML checked by the same schema and rules as the files
(:mod:`bookwise.workflows.loader`); nothing is saved while a problem remains, and each problem is
shown beside its input. Every save is a new version, with its author and time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import g, redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale, lazy_gettext
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms import (
    Form as PlainForm,
)
from wtforms.validators import Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from bookwise.admin.access import deny
from bookwise.admin.base import ActionForm, AdminView, Form, options, per_language
from bookwise.admin.display import workflow_name
from bookwise.calendars.editing import offer_workflow, slugify
from bookwise.calendars.models import Calendar
from bookwise.errors import NotFound, Problem, errors_only
from bookwise.formatting import format_when, human_duration
from bookwise.i18n import gettext
from bookwise.public.forms import booking_form
from bookwise.web import instance
from bookwise.workflows.editing import (
    FieldRow,
    RuleRow,
    StructuredWorkflow,
    blank_workflow,
    check_text,
    diff,
    events_of,
    field_of_problem,
    load_map,
    problem_text,
    structured,
    write,
)
from bookwise.workflows.language import FIELD_TYPES, Workflow
from bookwise.workflows.loader import CheckContext, CheckedWorkflow
from bookwise.workflows.models import WorkflowRecord
from bookwise.workflows.services import (
    calendars_of_workflow,
    create_workflow,
    find_version,
    find_workflow,
    latest_version,
    save_version,
    workflow_of,
    workflows_of_calendars,
)
from bookwise.workflows.sources import check_context

MAX_TEXT = 60_000


def _locale() -> str:
    return str(get_locale())


def _locales() -> tuple[str, ...]:
    return tuple(instance().settings.locales)


def _fallback() -> str:
    return str(instance().settings.default_locale)


def _context() -> CheckContext:
    """What a workflow is checked against (field sets, templates, channels), read once per
    request."""
    if "bw_check_context" not in g:
        bookwise = instance()
        g.bw_check_context, _problems = check_context(
            bookwise.settings, plugins=bookwise.database.plugins
        )
    context: CheckContext = g.bw_check_context
    return context


# --- the structured editor's form -------------------------------------------------------------


def _field_type_choices() -> list[tuple[str, str]]:
    names = {
        "text": gettext("Short text"),
        "textarea": gettext("Long text"),
        "email": gettext("E-mail address"),
        "phone": gettext("Phone number"),
        "number": gettext("Number"),
        "date": gettext("Date"),
        "select": gettext("One choice from a list"),
        "multiselect": gettext("Several choices from a list"),
        "checkbox": gettext("Checkbox (yes or no)"),
        "url": gettext("Web address"),
    }
    plugin_types = instance().database.plugins.field_types
    return [(t, names.get(t, t)) for t in FIELD_TYPES] + [
        (name, kind.label or name) for name, kind in sorted(plugin_types.items())
    ]


def _event_label(event: str) -> str:
    names = {
        "requested": gettext("Requested (waiting for approval)"),
        "confirmed": gettext("Confirmed"),
        "declined": gettext("Declined"),
        "cancelled": gettext("Cancelled"),
        "completed": gettext("Completed"),
        "no_show": gettext("No-show"),
        "rescheduled": gettext("Moved to another time"),
        "reminder": gettext("Reminder before the start"),
        "follow_up": gettext("Follow-up after the end"),
    }
    return names.get(event, event)


# The core's assignment strategies (bookwise.workflows.language.ASSIGNMENTS), as the editor
# names them, in the order it offers them; a test checks that every strategy has its label.
STRATEGY_LABELS = {
    "round_robin": lazy_gettext("In turn (round robin)"),
    "least_busy": lazy_gettext("To the least busy that week"),
    "random": lazy_gettext("At random"),
    "priority": lazy_gettext("By priority (the service's order)"),
}
STRATEGY_ORDER = ("round_robin", "least_busy", "random", "priority")


def editor_form(
    locales: tuple[str, ...],
    events: list[str],
    channel_names: list[str],
    field_sets: list[str],
    new: bool,
    plugin_strategies: Sequence[str] = (),
) -> type[Form]:
    """The structured editor's form class for this instance's languages, events and channels,
    and the assignment strategies its plugins add (offered by their names)."""

    class FieldRowForm(PlainForm):  # type: ignore[misc]
        include = SelectField(
            lazy_gettext("Field set"),
            choices=options([("", "—"), *((name, name) for name in field_sets)]),
            validate_choice=False,
        )
        id = StringField(lazy_gettext("Identifier"), validators=[Length(max=40)])
        type = SelectField(
            lazy_gettext("Type"), choices=options(_field_type_choices()), validate_choice=False
        )
        required = BooleanField(lazy_gettext("Required"))
        sensitive = BooleanField(lazy_gettext("Sensitive (health, HR data)"))
        options = TextAreaField(
            lazy_gettext("Choices"),
            render_kw={"rows": 3, "spellcheck": "false"},
            description=lazy_gettext(
                "One per line: value | %(languages)s", languages=" | ".join(locales)
            ),
        )
        source = HiddenField()
        remove = BooleanField(lazy_gettext("Remove this field"))

    per_language(
        FieldRowForm,
        "label",
        locales,
        lambda code: lazy_gettext("Question (%(language)s)", language=code),
        500,
    )
    per_language(
        FieldRowForm,
        "help",
        locales,
        lambda code: lazy_gettext("Hint (%(language)s)", language=code),
        1000,
    )

    class RuleRowForm(PlainForm):  # type: ignore[misc]
        on = SelectField(
            lazy_gettext("When"),
            choices=options([(e, _event_label(e)) for e in events]),
            validate_choice=False,
        )
        offset = StringField(
            lazy_gettext("How long before or after"),
            validators=[Length(max=20)],
            render_kw={"placeholder": "24h"},
            description=lazy_gettext("For reminders and follow-ups, like 24h or 30m."),
        )
        to_client = BooleanField(lazy_gettext("The client"))
        to_staff = BooleanField(lazy_gettext("The staff member"))
        to_admins = BooleanField(lazy_gettext("The calendar's administrators"))
        to_other = StringField(
            lazy_gettext("Other addresses"),
            validators=[Length(max=400)],
            description=lazy_gettext("E-mail addresses, separated by commas."),
        )
        channels = SelectMultipleField(
            lazy_gettext("Through"),
            choices=options([(c, c) for c in channel_names]),
            validate_choice=False,
            widget=ListWidget(prefix_label=False),
            option_widget=CheckboxInput(),
        )
        template = StringField(
            lazy_gettext("Template"),
            validators=[Length(max=64)],
            description=lazy_gettext("Leave empty for the event's own template."),
        )
        source = HiddenField()
        remove = BooleanField(lazy_gettext("Remove this message"))

    class EditorForm(Form):
        id = StringField(
            lazy_gettext("Identifier"),
            validators=[Length(max=63)],
            description=lazy_gettext(
                "Used in the page's address, like legal-consultation. It cannot change later."
            ),
            render_kw={} if new else {"readonly": True},
        )
        duration = StringField(
            lazy_gettext("Duration"),
            validators=[Length(max=20)],
            description=lazy_gettext("Like 30m, 1h or 1h30m."),
        )
        slot_step = StringField(
            lazy_gettext("Offer a start time every"),
            validators=[Length(max=20)],
            description=lazy_gettext("Empty: every duration."),
        )
        buffer_before = StringField(lazy_gettext("Free time before"), validators=[Length(max=20)])
        buffer_after = StringField(lazy_gettext("Free time after"), validators=[Length(max=20)])
        min_notice = StringField(
            lazy_gettext("Book at least this long ahead"),
            validators=[Length(max=20)],
            description=lazy_gettext("Like 2h or 1d. Empty: the default (1 hour)."),
        )
        max_ahead = StringField(
            lazy_gettext("Book at most this long ahead"),
            validators=[Length(max=20)],
            description=lazy_gettext("Like 30d. Empty: the default (90 days)."),
        )
        cancellation_allowed = BooleanField(lazy_gettext("Clients may move or cancel online"))
        cancellation_min_notice = StringField(
            lazy_gettext("Until this long before the start"), validators=[Length(max=20)]
        )
        capacity = IntegerField(
            lazy_gettext("Places per time"),
            validators=[Optional(), NumberRange(min=1, max=1000)],
            description=lazy_gettext("1 for a one-to-one meeting; more for a group."),
        )
        location_type = SelectField(
            lazy_gettext("Where"),
            choices=options(
                [
                    ("in_person", lazy_gettext("In person")),
                    ("online", lazy_gettext("Online")),
                    ("phone", lazy_gettext("By phone")),
                ]
            ),
            validate_choice=False,
        )
        location_url = StringField(
            lazy_gettext("Meeting link (online)"), validators=[Length(max=500)]
        )
        staff_tags = StringField(
            lazy_gettext("Staff with the tags"),
            validators=[Length(max=200)],
            description=lazy_gettext("Separated by commas. Empty: every staff member."),
        )
        client_chooses = BooleanField(lazy_gettext("The client chooses the staff member"))
        assignment = SelectField(
            lazy_gettext("Otherwise, assign"),
            choices=options(
                [
                    *((name, STRATEGY_LABELS[name]) for name in STRATEGY_ORDER),
                    *((name, name) for name in plugin_strategies),
                ]
            ),
            validate_choice=False,
        )
        consent = BooleanField(lazy_gettext("Ask for consent"))
        consent_required = BooleanField(lazy_gettext("Consent is required to book"))
        consent_link = StringField(
            lazy_gettext("Link to the privacy notice"), validators=[Length(max=500)]
        )
        fields = FieldList(FormField(FieldRowForm), min_entries=0, max_entries=60)
        rules = FieldList(FormField(RuleRowForm), min_entries=0, max_entries=40)
        comment = StringField(
            lazy_gettext("What changed (for the history)"), validators=[Length(max=500)]
        )

    per_language(
        EditorForm,
        "name",
        locales,
        lambda code: lazy_gettext("Name (%(language)s)", language=code),
        200,
    )
    per_language(
        EditorForm,
        "description",
        locales,
        lambda code: lazy_gettext("Description (%(language)s)", language=code),
        2000,
        rows=2,
    )
    per_language(
        EditorForm,
        "location_details",
        locales,
        lambda code: lazy_gettext("Directions (%(language)s)", language=code),
        500,
    )
    per_language(
        EditorForm,
        "consent_text",
        locales,
        lambda code: lazy_gettext("Consent text (%(language)s)", language=code),
        2000,
        rows=2,
    )
    return EditorForm


def _texts(form: Any, prefix: str, locales: tuple[str, ...]) -> dict[str, str]:
    return {code: (form[f"{prefix}_{code}"].data or "") for code in locales}


def _options_text(options: list[tuple[str, dict[str, str]]], locales: tuple[str, ...]) -> str:
    lines = []
    for value, labels in options:
        cells = [labels.get(code, "") for code in locales]
        while cells and not cells[-1]:
            cells.pop()
        lines.append(" | ".join([value, *cells]))
    return "\n".join(lines)


def _parse_options(text: str, locales: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
    options = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 1:
            value = slugify(cells[0]).replace("-", "_") or cells[0]
            options.append((value, {locales[0]: cells[0]}))
            continue
        labels = {code: cell for code, cell in zip(locales, cells[1:], strict=False) if cell}
        options.append((cells[0], labels or {locales[0]: cells[0]}))
    return options


def form_data(values: StructuredWorkflow, locales: tuple[str, ...]) -> dict[str, Any]:
    """The editor's values as the form's data."""
    data: dict[str, Any] = {
        "id": values.id,
        "duration": values.duration,
        "slot_step": values.slot_step,
        "buffer_before": values.buffer_before,
        "buffer_after": values.buffer_after,
        "min_notice": values.min_notice,
        "max_ahead": values.max_ahead,
        "cancellation_allowed": values.cancellation_allowed,
        "cancellation_min_notice": values.cancellation_min_notice,
        "capacity": values.capacity,
        "location_type": values.location_type,
        "location_url": values.location_url,
        "staff_tags": ", ".join(values.staff_tags),
        "client_chooses": values.client_chooses,
        "assignment": values.assignment,
        "consent": values.consent,
        "consent_required": values.consent_required,
        "consent_link": values.consent_link,
        "fields": [],
        "rules": [],
    }
    for code in locales:
        data[f"name_{code}"] = values.name.get(code, "")
        data[f"description_{code}"] = values.description.get(code, "")
        data[f"location_details_{code}"] = values.location_details.get(code, "")
        data[f"consent_text_{code}"] = values.consent_text.get(code, "")
    for row in values.fields:
        entry: dict[str, Any] = {
            "include": row.include,
            "id": row.id,
            "type": row.type,
            "required": row.required,
            "sensitive": row.sensitive,
            "options": _options_text(row.options, locales),
            "source": "" if row.source is None else str(row.source),
        }
        for code in locales:
            entry[f"label_{code}"] = row.label.get(code, "")
            entry[f"help_{code}"] = row.help.get(code, "")
        data["fields"].append(entry)
    for rule in values.rules:
        named = {"client", "staff", "calendar_admins"}
        data["rules"].append(
            {
                "on": rule.on,
                "offset": rule.offset,
                "to_client": "client" in rule.to,
                "to_staff": "staff" in rule.to,
                "to_admins": "calendar_admins" in rule.to,
                "to_other": ", ".join(t for t in rule.to if t not in named),
                "channels": rule.channels,
                "template": rule.template,
                "source": "" if rule.source is None else str(rule.source),
            }
        )
    return data


def _source(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 5 else None


def values_of(
    form: Any, locales: tuple[str, ...], keep_removed: bool = False
) -> StructuredWorkflow:
    """The editor's values from the posted form (rows marked for removal left out)."""
    rows = []
    for entry in form.fields.entries:
        sub = entry.form
        if sub.remove.data and not keep_removed:
            continue
        rows.append(
            FieldRow(
                include=sub.include.data or "",
                id=(sub.id.data or "").strip(),
                type=sub.type.data or "text",
                label=_texts(sub, "label", locales),
                help=_texts(sub, "help", locales),
                required=bool(sub.required.data),
                options=_parse_options(sub.options.data or "", locales),
                sensitive=bool(sub.sensitive.data),
                source=_source(sub.source.data),
                removed=bool(sub.remove.data),
            )
        )
    rules = []
    for entry in form.rules.entries:
        sub = entry.form
        if sub.remove.data and not keep_removed:
            continue
        to = []
        if sub.to_client.data:
            to.append("client")
        if sub.to_staff.data:
            to.append("staff")
        if sub.to_admins.data:
            to.append("calendar_admins")
        to += [a.strip() for a in (sub.to_other.data or "").split(",") if a.strip()]
        rules.append(
            RuleRow(
                on=sub.on.data or "confirmed",
                offset=(sub.offset.data or "").strip(),
                to=to,
                channels=list(sub.channels.data or []) or ["email"],
                template=(sub.template.data or "").strip(),
                source=_source(sub.source.data),
                removed=bool(sub.remove.data),
            )
        )
    tags = [t.strip().lower() for t in (form.staff_tags.data or "").split(",") if t.strip()]
    return StructuredWorkflow(
        id=(form.id.data or "").strip(),
        name=_texts(form, "name", locales),
        description=_texts(form, "description", locales),
        duration=form.duration.data or "",
        slot_step=form.slot_step.data or "",
        buffer_before=form.buffer_before.data or "",
        buffer_after=form.buffer_after.data or "",
        min_notice=form.min_notice.data or "",
        max_ahead=form.max_ahead.data or "",
        cancellation_allowed=bool(form.cancellation_allowed.data),
        cancellation_min_notice=form.cancellation_min_notice.data or "",
        capacity=form.capacity.data or 1,
        location_type=form.location_type.data or "in_person",
        location_details=_texts(form, "location_details", locales),
        location_url=form.location_url.data or "",
        staff_tags=list(dict.fromkeys(tags)),
        client_chooses=bool(form.client_chooses.data),
        assignment=form.assignment.data or "round_robin",
        fields=rows,
        consent=bool(form.consent.data),
        consent_required=bool(form.consent_required.data),
        consent_text=_texts(form, "consent_text", locales),
        consent_link=form.consent_link.data or "",
        rules=rules,
    )


def attach_problems(form: Any, problems: list[Problem], locales: tuple[str, ...]) -> list[Problem]:
    """Put each problem beside its input; return those no input shows (listed at the top)."""
    loose = []
    for problem in problems:
        if problem.severity != "error":
            continue
        name = field_of_problem(problem)
        target = _input(form, name, locales) if name else None
        if target is None:
            loose.append(problem)
            continue
        target.errors = [*target.errors, problem_text(problem)]
    return loose


def _input(form: Any, name: str, locales: tuple[str, ...]) -> Any:
    texts = ("name", "description", "location_details", "consent_text")
    if name in texts:
        return form[f"{name}_{locales[0]}"]
    if name in form:
        return form[name]
    parts = name.split("-")
    if len(parts) == 3 and parts[0] in ("fields", "rules") and parts[1].isdigit():
        entries = form[parts[0]].entries
        index = int(parts[1])
        if index >= len(entries):
            return None
        sub = entries[index].form
        key = parts[2]
        if key in ("label", "help"):
            return sub[f"{key}_{locales[0]}"]
        if key == "include" and sub.include.data:
            return sub.include
        return sub[key] if key in sub else sub["id" if parts[0] == "fields" else "on"]
    return None


# --- the view ---------------------------------------------------------------------------------


class WorkflowsView(AdminView):
    need = "view"

    # rights ----------------------------------------------------------------------------------

    def _record(self, slug: str) -> WorkflowRecord:
        """The workflow, when the user may see it (it concerns a calendar they may view)."""
        try:
            record = find_workflow(self.db, slug)
        except NotFound:
            raise
        access = self.access
        concerned = calendars_of_workflow(self.db, record)
        if not access.superadmin and not any(access.allows(c, "view") for c in concerned):
            deny(access, "workflow", None, {"workflow": slug[:64]})
        return record

    def _may_edit(self, record: WorkflowRecord) -> bool:
        """Admins of every calendar it concerns (a change reaches them all), or a superadmin."""
        access = self.access
        if access.superadmin:
            return True
        concerned = calendars_of_workflow(self.db, record)
        return bool(concerned) and all(access.allows(c, "admin") for c in concerned)

    def _editable(self, slug: str) -> WorkflowRecord:
        record = self._record(slug)
        if not self._may_edit(record):
            deny(self.access, "edit workflow", self.calendar.id, {"workflow": slug[:64]})
        return record

    # list and details --------------------------------------------------------------------------

    @expose("/")
    def index(self) -> str:
        access, calendar = self.access, self.calendar
        locale = _locale()
        ids = None if access.superadmin else access.calendar_ids("view")
        offered = {s.workflow_id: s for s in calendar.services}
        rows = []
        for record in workflows_of_calendars(self.db, ids):
            version = latest_version(self.db, record.id)
            if version is None:
                continue
            workflow = workflow_of(version)
            rows.append(
                {
                    "record": record,
                    "name": workflow_name(workflow, locale, calendar.default_locale),
                    "version": version,
                    "when": format_when(version.created_at, calendar.timezone, locale),
                    "service": offered.get(record.id),
                }
            )
        rows.sort(key=lambda r: (r["service"] is None, str(r["name"]).casefold()))
        return self.render(
            "bookwise_admin/workflows/list.html",
            rows=rows,
            admin=access.allows(calendar.id, "admin"),
            calendar=calendar,
            form=ActionForm(),
        )

    @expose("/<slug>/")
    def details(self, slug: str) -> str:
        record = self._record(slug)
        version = latest_version(self.db, record.id)
        assert version is not None
        workflow = workflow_of(version)
        calendar = self.calendar
        locale = _locale()
        service = next((s for s in calendar.services if s.workflow_id == record.id), None)
        concerned = sorted(
            (self.db.get(Calendar, c) for c in calendars_of_workflow(self.db, record)),
            key=lambda c: c.name if c else "",
        )
        return self.render(
            "bookwise_admin/workflows/details.html",
            record=record,
            version=version,
            workflow=workflow,
            name=workflow_name(workflow, locale, calendar.default_locale),
            duration=human_duration(workflow.duration, locale),
            service=service,
            calendars=[c for c in concerned if c is not None],
            editable=self._may_edit(record),
            admin_here=self.access.allows(calendar.id, "admin"),
            when=format_when(version.created_at, calendar.timezone, locale),
            form=ActionForm(),
        )

    @expose("/<slug>/offer", methods=("POST",))
    def offer(self, slug: str) -> Response:
        record = self._record(slug)
        calendar = self.calendar
        self.require(calendar.id, "admin", "offer workflow")
        if not ActionForm().validate_on_submit():
            deny(self.access, "offer workflow without a valid form", calendar.id)
        service = offer_workflow(self.db, calendar, record, self.access.actor, request.remote_addr)
        publish = request.form.get("publish") == "1"
        if publish:
            service.active = True
            self.audit(
                "service.published",
                object_type="service",
                object_id=record.slug,
                calendar_id=calendar.id,
            )
        self.commit(
            gettext("Published: clients can book it now.")
            if publish
            else gettext("Added to this calendar, not yet published.")
        )
        if request.form.get("next_url") == "services":
            return redirect(url_for("services.index"))
        return redirect(url_for(".details", slug=slug))

    # editing ---------------------------------------------------------------------------------

    def _editor_form(
        self,
        data: dict[str, Any] | None,
        definition: dict[str, Any],
        new: bool,
        formdata: Any = None,
    ) -> Any:
        context = _context()
        channels = sorted(context.known_channels or {"email"})
        form_class = editor_form(
            _locales(),
            events_of(definition),
            channels,
            sorted(context.field_sets),
            new,
            plugin_strategies=sorted(context.assignments),
        )
        return form_class(formdata=formdata, data=data)

    @expose("/new", methods=("GET", "POST"))
    def create(self) -> Any:
        calendar = self.calendar
        self.require(calendar.id, "admin", "create workflow")
        locales = _locales()
        if request.method == "GET":
            values = blank_workflow("", {})
            form = self._editor_form(form_data(values, locales), {}, True)
            return self._editor_page(form, None, [], None)
        return self._post_editor(None, True)

    @expose("/<slug>/edit", methods=("GET", "POST"))
    def edit(self, slug: str) -> Any:
        record = self._editable(slug)
        version = latest_version(self.db, record.id)
        assert version is not None
        if request.method == "GET":
            data = load_map(version.source_text)
            values = structured(data, _fallback())
            form = self._editor_form(form_data(values, _locales()), dict(data), False)
            return self._editor_page(form, record, [], None)
        return self._post_editor(record, False)

    def _post_editor(self, record: WorkflowRecord | None, new: bool) -> Any:
        locales = _locales()
        version = latest_version(self.db, record.id) if record else None
        source = version.source_text if version else None
        definition = dict(load_map(source)) if source else {}
        form = self._editor_form(None, definition, new, formdata=request.form)
        if not form.validate_on_submit():
            if form.csrf_token.errors:
                deny(self.access, "workflow editor without a valid form", self.calendar.id)
            return self._editor_page(form, record, [], None, 422)
        op = request.form.get("op", "save")
        if op not in {"save", "preview"}:
            values = values_of(form, locales, keep_removed=True)
            _apply_op(values, op, sorted(_context().field_sets))
            values.fields = [r for r in values.fields if not r.removed]
            values.rules = [r for r in values.rules if not r.removed]
            fresh = self._editor_form(form_data(values, locales), definition, new)
            fresh.comment.data = form.comment.data
            return self._editor_page(fresh, record, [], None)
        values = values_of(form, locales)
        if record is not None:
            values.id = record.slug
        text = write(values, source, _fallback())
        checked, problems = self._check(text, values.id, record)
        if checked is None or errors_only(problems):
            fresh = self._editor_form(form_data(values, locales), definition, new)
            fresh.comment.data = form.comment.data
            loose = attach_problems(fresh, problems, locales)
            return self._editor_page(fresh, record, loose, text, 422)
        if op == "preview":
            fresh = self._editor_form(form_data(values, locales), definition, new)
            fresh.comment.data = form.comment.data
            return self._editor_page(fresh, record, [], text, preview=checked.workflow)
        return self._save(record, checked, "admin", form.comment.data)

    def _check(
        self, text: str, slug: str, record: WorkflowRecord | None
    ) -> tuple[CheckedWorkflow | None, list[Problem]]:
        if len(text) > MAX_TEXT:
            return None, [Problem("workflow", None, None, gettext("The workflow is too long."))]
        name = f"{slug or 'workflow'}.yaml"
        checked, problems = check_text(
            text, name, _context(), expected_id=record.slug if record else None
        )
        if checked is not None and record is not None and checked.workflow.id != record.slug:
            problems = [
                *problems,
                Problem(
                    name,
                    *checked.id_position,
                    "id: "
                    + gettext(
                        "The identifier cannot change: it is %(id)s. To make another scenario, "
                        "import this text as a new one.",
                        id=record.slug,
                    ),
                ),
            ]
            checked = None
        if checked is not None and record is None:
            try:
                find_workflow(self.db, checked.workflow.id)
            except NotFound:
                pass
            else:
                problems = [
                    *problems,
                    Problem(
                        name,
                        None,
                        None,
                        "id: "
                        + gettext(
                            "A workflow %(id)s already exists; choose another identifier.",
                            id=checked.workflow.id,
                        ),
                    ),
                ]
                checked = None
        return checked, problems

    def _save(
        self,
        record: WorkflowRecord | None,
        checked: CheckedWorkflow,
        origin: str,
        comment: str | None,
    ) -> Response:
        access, calendar = self.access, self.calendar
        if record is None:
            record = create_workflow(
                self.db, checked, calendar.id, origin=origin, author=access.actor
            )
            offer_workflow(self.db, calendar, record, access.actor, request.remote_addr)
            self.audit(
                "workflow.created",
                object_type="workflow",
                object_id=record.slug,
                calendar_id=calendar.id,
            )
            self.commit(
                gettext(
                    "Scenario created (version 1). Publish it when it is ready: clients cannot "
                    "book it yet."
                )
            )
            return redirect(url_for(".details", slug=record.slug))
        version = save_version(
            self.db,
            record,
            checked,
            origin=origin,
            author=access.actor,
            comment=(comment or "").strip() or None,
        )
        if version is None:
            self.db.rollback()
            self.commit(gettext("Nothing changed: no new version."))
        else:
            self.commit(gettext("Saved as version %(number)s.", number=version.number))
        return redirect(url_for(".details", slug=record.slug))

    def _editor_page(
        self,
        form: Any,
        record: WorkflowRecord | None,
        loose: list[Problem],
        text: str | None,
        status: int = 200,
        preview: Workflow | None = None,
    ) -> Any:
        return self.render(
            "bookwise_admin/workflows/editor.html",
            form=form,
            record=record,
            loose=loose,
            locales=_locales(),
            has_errors=bool(loose) or bool(form.errors) or status == 422,
            yaml_text=text,
            field_sets=bool(_context().field_sets),
            preview=self._preview_values(preview) if preview else None,
        ), status

    # the YAML editor ----------------------------------------------------------------------------

    @expose("/<slug>/yaml", methods=("GET", "POST"))
    def yaml(self, slug: str) -> Any:
        record = self._editable(slug)
        version = latest_version(self.db, record.id)
        assert version is not None
        form = YamlForm(data={"text": version.source_text} if request.method == "GET" else None)
        problems: list[Problem] = []
        status = 200
        preview = None
        if request.method == "POST":
            if not form.validate_on_submit():
                if form.csrf_token.errors:
                    deny(self.access, "YAML editor without a valid form", self.calendar.id)
                status = 422
            else:
                text = (form.text.data or "").replace("\r\n", "\n")
                checked, problems = self._check(text, record.slug, record)
                if checked is None or errors_only(problems):
                    status = 422
                elif request.form.get("op") == "preview":
                    preview = checked.workflow
                else:
                    return self._save(record, checked, "admin", form.comment.data)
        return self.render(
            "bookwise_admin/workflows/yaml.html",
            form=form,
            record=record,
            problems=problems,
            preview=self._preview_values(preview) if preview else None,
        ), status

    # versions --------------------------------------------------------------------------------

    @expose("/<slug>/versions")
    def versions(self, slug: str) -> str:
        record = self._record(slug)
        calendar = self.calendar
        locale = _locale()
        versions = sorted(record.versions, key=lambda v: v.number, reverse=True)
        return self.render(
            "bookwise_admin/workflows/versions.html",
            record=record,
            versions=[
                {"version": v, "when": format_when(v.created_at, calendar.timezone, locale)}
                for v in versions
            ],
            editable=self._may_edit(record),
            form=ActionForm(),
        )

    @expose("/<slug>/versions/<int:number>")
    def version(self, slug: str, number: int) -> str:
        record = self._record(slug)
        version = find_version(self.db, record, number)
        latest = latest_version(self.db, record.id)
        assert latest is not None
        against_raw = request.args.get("against", "")
        against_number = (
            int(against_raw) if against_raw.isdigit() and len(against_raw) < 7 else None
        )
        if against_number is None:
            against_number = number - 1 if number > 1 else latest.number
        try:
            other = find_version(self.db, record, against_number)
        except NotFound:
            other = latest
        lines = diff(
            other.source_text,
            version.source_text,
            f"v{other.number}",
            f"v{version.number}",
        )
        return self.render(
            "bookwise_admin/workflows/version.html",
            record=record,
            version=version,
            other=other,
            latest=latest,
            lines=lines,
            when=format_when(version.created_at, self.calendar.timezone, _locale()),
            editable=self._may_edit(record),
            form=ActionForm(),
        )

    @expose("/<slug>/versions/<int:number>/restore", methods=("POST",))
    def restore(self, slug: str, number: int) -> Response:
        record = self._editable(slug)
        if not ActionForm().validate_on_submit():
            deny(self.access, "restore without a valid form", self.calendar.id)
        version = find_version(self.db, record, number)
        checked, problems = check_text(
            version.source_text, f"{record.slug}.yaml", _context(), expected_id=record.slug
        )
        if checked is None or errors_only(problems):
            self.fail(
                gettext(
                    "Version %(number)s cannot be restored: %(problem)s",
                    number=number,
                    problem=str(errors_only(problems)[0]) if errors_only(problems) else "",
                )
            )
            return redirect(url_for(".version", slug=slug, number=number))
        saved = save_version(
            self.db,
            record,
            checked,
            origin="restore",
            author=self.access.actor,
            comment=gettext("Restored version %(number)s", number=number),
        )
        if saved is None:
            self.commit(gettext("This is already the current version."))
        else:
            self.commit(
                gettext(
                    "Version %(number)s restored as version %(new)s.",
                    number=number,
                    new=saved.number,
                )
            )
        return redirect(url_for(".details", slug=slug))

    # import and export -------------------------------------------------------------------------

    @expose("/<slug>/export")
    def export(self, slug: str) -> Response:
        record = self._record(slug)
        number_raw = request.args.get("version", "")
        if number_raw.isdigit() and len(number_raw) < 7:
            version = find_version(self.db, record, int(number_raw))
        else:
            latest = latest_version(self.db, record.id)
            assert latest is not None
            version = latest
        return Response(
            version.source_text,
            mimetype="application/yaml",
            headers={
                "Content-Disposition": f'attachment; filename="{record.slug}.yaml"',
                "Cache-Control": "no-store",
            },
        )

    @expose("/import", methods=("GET", "POST"))
    def import_file(self) -> Any:
        calendar = self.calendar
        self.require(calendar.id, "admin", "import workflow")
        form = ImportForm()
        problems: list[Problem] = []
        status = 200
        if request.method == "POST":
            if not form.validate_on_submit():
                if form.csrf_token.errors:
                    deny(self.access, "import without a valid form", calendar.id)
                status = 422
            else:
                upload = request.files.get("file")
                name = "pasted.yaml"
                text = form.text.data or ""
                if upload is not None and upload.filename:
                    name = upload.filename[:200]
                    raw = upload.read(MAX_TEXT + 1)
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        problems = [
                            Problem(name, None, None, gettext("The file is not UTF-8 text."))
                        ]
                if not problems:
                    text = text.replace("\r\n", "\n")
                    peek = load_map(text) if _parses(text) else {}
                    slug = str(peek.get("id", "")) if isinstance(peek.get("id"), str) else ""
                    existing = None
                    try:
                        existing = find_workflow(self.db, slug) if slug else None
                    except NotFound:
                        existing = None
                    if existing is not None:
                        self._record(existing.slug)
                        if not self._may_edit(existing):
                            deny(
                                self.access,
                                "import over a workflow",
                                calendar.id,
                                {"workflow": slug[:64]},
                            )
                        checked, problems = check_text(
                            text, name, _context(), expected_id=existing.slug
                        )
                    else:
                        checked, problems = self._check(text, slug, None)
                        problems = [
                            Problem(name, p.line, p.column, p.message, p.severity) for p in problems
                        ]
                    if checked is not None and not errors_only(problems):
                        if existing is None:
                            return self._save(None, checked, "import", None)
                        return self._save(
                            existing,
                            checked,
                            "import",
                            gettext("Imported from %(file)s", file=name),
                        )
                status = 422
        return self.render(
            "bookwise_admin/workflows/import.html", form=form, problems=problems
        ), status

    # preview ---------------------------------------------------------------------------------

    @expose("/<slug>/preview")
    def preview(self, slug: str) -> str:
        record = self._record(slug)
        version = latest_version(self.db, record.id)
        assert version is not None
        return self.render(
            "bookwise_admin/workflows/preview_page.html",
            record=record,
            preview=self._preview_values(workflow_of(version)),
        )

    def _preview_values(self, workflow: Workflow) -> dict[str, Any]:
        locales = _locales()
        asked = request.args.get("preview_lang") or request.form.get("preview_lang") or _locale()
        locale = asked if asked in locales else _locale()
        fallback = self.calendar.default_locale
        form = booking_form(workflow, locale, fallback, base=PlainForm)()
        return {
            "workflow": workflow,
            "form": form,
            "locale": locale,
            "locales": locales,
            "name": workflow.name.get(locale, fallback),
            "description": workflow.description.get(locale, fallback),
            "duration": human_duration(workflow.duration, locale),
            "consent_link": workflow.consent.link.get(locale, fallback) if workflow.consent else "",
            "request_only": workflow.lifecycle.needs_approval,
        }


def _parses(text: str) -> bool:
    try:
        load_map(text)
    except Exception:  # any YAML error: the checker reports it properly
        return False
    return True


def _apply_op(values: StructuredWorkflow, op: str, field_sets: list[str]) -> None:
    """The editor's buttons that change its rows (no JavaScript needed): add, move up or down."""
    if op == "add_field":
        values.fields.append(FieldRow(id="", type="text"))
    elif op == "add_include" and field_sets:
        values.fields.append(FieldRow(include=field_sets[0]))
    elif op == "add_rule":
        values.rules.append(RuleRow(on="confirmed", to=["client"]))
    else:
        kind, _, rest = op.partition(":")
        direction, _, index_text = rest.partition(":")
        lists: dict[str, list[Any]] = {"fields": values.fields, "rules": values.rules}
        rows = lists.get(kind)
        if rows is None or not index_text.isdigit():
            return
        index = int(index_text)
        other = index - 1 if direction == "up" else index + 1
        if 0 <= index < len(rows) and 0 <= other < len(rows):
            rows[index], rows[other] = rows[other], rows[index]


class YamlForm(Form):
    text = TextAreaField(
        lazy_gettext("Workflow (YAML)"),
        validators=[Length(max=MAX_TEXT)],
        render_kw={"rows": 30, "spellcheck": "false", "class": "code-editor"},
    )
    comment = StringField(
        lazy_gettext("What changed (for the history)"), validators=[Length(max=500)]
    )


class ImportForm(Form):
    text = TextAreaField(
        lazy_gettext("Or paste the YAML"),
        validators=[Length(max=MAX_TEXT)],
        render_kw={"rows": 12, "spellcheck": "false", "class": "code-editor"},
    )
