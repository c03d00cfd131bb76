"""Scenarios (workflows) in the back office, without code: a structured editor for the common
keys, a YAML editor for the rest, versions with their diffs and a one-click restore, import,
export, and a preview of the public form.

Both editors produce YAML checked by the same schema and rules as the files
(:mod:`bookwise.workflows.loader`); nothing is saved while a problem remains, and each problem is
shown beside its input. Every save is a new version, with its author and time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from flask import flash, g, redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale, lazy_gettext
from markupsafe import Markup
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
from wtforms.validators import Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from bookwise.admin.access import deny
from bookwise.admin.base import ActionForm, AdminView, Form, options, per_language
from bookwise.admin.conditions import ConditionField
from bookwise.admin.display import CHANNEL_LABELS, EVENT_LABELS, action_name, workflow_name
from bookwise.admin.durations import DurationField
from bookwise.admin.views.workflow_preview import PreviewMixin
from bookwise.admin.views.workflow_publishing import PublishMixin
from bookwise.admin.views.workflow_starters import StartersMixin
from bookwise.admin.week_words import parse_week, week_text
from bookwise.calendars.editing import create_calendar_workflow, offer_in_calendar
from bookwise.calendars.models import Calendar
from bookwise.documents import DocumentError
from bookwise.errors import N_, NotFound, Problem, errors_only
from bookwise.formatting import format_when, human_duration, parse_sessions, sessions_text
from bookwise.i18n import gettext, language_name
from bookwise.public.forms import booking_form
from bookwise.timezones import zone_names
from bookwise.web import instance
from bookwise.workflows.diagram import Move, Step, lifecycle_svg
from bookwise.workflows.editing import (
    EDITOR_KEYS,
    LIFECYCLES,
    ROLE_LABELS,
    ROW_ANCHORS,
    ROW_LISTS,
    EditorKey,
    Row,
    StructuredWorkflow,
    blank_workflow,
    check_places,
    check_text,
    diff,
    events_of,
    field_of_problem,
    keep_names,
    keys_in,
    keys_of,
    layout,
    lifecycle_rows,
    load_map,
    name_steps,
    new_row,
    parse_scenarios,
    problem_text,
    states_of,
    structured,
    write,
)
from bookwise.workflows.language import Workflow, assignment_names, field_type_names
from bookwise.workflows.loader import CheckContext, CheckedWorkflow
from bookwise.workflows.models import WorkflowRecord
from bookwise.workflows.scenario_tests import CaseResult, run_cases
from bookwise.workflows.services import (
    calendars_of_workflow,
    find_version,
    find_workflow,
    in_use,
    latest_version,
    save_version,
    workflow_of,
    workflows_of_calendars,
)
from bookwise.workflows.sources import check_context

MAX_TEXT = 60_000
# The editor's sections laid out from the table of keys (the template places each).
SECTIONS = (
    "service",
    "time",
    "place",
    "field_set",
    "question",
    "question_more",
    "route",
    "state",
    "transition",
    "consent",
    "privacy",
    "quiet",
    "rule",
    "check",
    "check_scene",
    "checks",
)


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

# How the editor names the core's vocabularies; a plugin's entries show its own label or name.
FIELD_TYPE_LABELS = {
    "text": lazy_gettext("Short text"),
    "textarea": lazy_gettext("Long text"),
    "email": lazy_gettext("E-mail address"),
    "phone": lazy_gettext("Phone number"),
    "number": lazy_gettext("Number"),
    "date": lazy_gettext("Date"),
    "select": lazy_gettext("One choice from a list"),
    "multiselect": lazy_gettext("Several choices from a list"),
    "checkbox": lazy_gettext("Checkbox (yes or no)"),
    "url": lazy_gettext("Web address"),
}


def _channel_choices(names: Sequence[str]) -> list[tuple[str, Any]]:
    host = instance().database.plugins
    known = [name for name in CHANNEL_LABELS if name in names]
    others = sorted(name for name in names if name not in CHANNEL_LABELS)
    return [
        *((name, CHANNEL_LABELS[name]) for name in known),
        *((name, host.channel_label(name) or name) for name in others),
    ]


# The core's assignment strategies (bookwise.workflows.language.ASSIGNMENTS), as the editor
# names them, in the order it offers them; a test checks that every strategy has its label.
STRATEGY_LABELS = {
    "round_robin": lazy_gettext("In turn (round robin)"),
    "least_busy": lazy_gettext("To the least busy that week"),
    "random": lazy_gettext("At random"),
    "priority": lazy_gettext("By priority (the service's order)"),
}
STRATEGY_ORDER = ("round_robin", "least_busy", "random", "priority")


def _provider_label(name: str) -> str:
    """A meeting provider as offered: "A new Jitsi meeting for each booking"."""
    provider = instance().database.plugins.meeting_providers.get(name)
    title = str(getattr(provider, "label", "") or name.replace("_", " ").title())
    return gettext("A new %(provider)s meeting for each booking", provider=title)


class ChoiceRow(PlainForm):  # type: ignore[misc]
    """One choice of a list question: its stored value (kept, made from its words when new)
    and its wording in each language (boxes added per language by :func:`_choice_row`)."""

    value = HiddenField()


def _choice_row(locales: tuple[str, ...]) -> type[PlainForm]:
    class Row(ChoiceRow):
        pass

    per_language(Row, "label", locales, lambda code: language_name(code, _locale()), 500)
    return Row


def _state_label(name: str) -> Any:
    """A step as offered in menus: its usual name in words, else its identifier."""
    return EVENT_LABELS.get(name) or name.replace("_", " ").capitalize()


def _field_type_choices(plugin_types: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [
        (name, FIELD_TYPE_LABELS.get(name) or getattr(plugin_types.get(name), "label", "") or name)
        for name in field_type_names(plugin_types)
    ]


def editor_form(
    locales: tuple[str, ...],
    events: list[str],
    channel_names: list[str],
    field_sets: list[str],
    new: bool,
    plugin_strategies: Sequence[str] = (),
    plugin_field_types: Mapping[str, Any] | None = None,
    menus: Mapping[str, list[tuple[str, Any]]] | None = None,
) -> type[Form]:
    """The structured editor's form class for this instance's languages, events and channels,
    field sets, and what its plugins add (strategies and field types, offered by their names or
    labels): one input per entry of :data:`~bookwise.workflows.editing.EDITOR_KEYS`."""
    if plugin_field_types is None:
        plugin_field_types = instance().database.plugins.field_types
    choices: dict[str, list[tuple[str, Any]]] = {
        "field_sets": [("", "—"), *((name, name) for name in field_sets)],
        "field_types": _field_type_choices(plugin_field_types),
        "events": [(e, EVENT_LABELS.get(e, e)) for e in events],
        "channels": _channel_choices(channel_names),
        "states": [],
        "providers": [("", lazy_gettext("The fixed link below"))],
        "timezones": [(name, name) for name in sorted(zone_names())],
        **(menus or {}),
        "strategies": [
            *((name, STRATEGY_LABELS[name]) for name in STRATEGY_ORDER),
            *(
                (name, name)
                for name in assignment_names(plugin_strategies)
                if name not in STRATEGY_LABELS
            ),
        ],
    }

    class FieldRowForm(PlainForm):  # type: ignore[misc]
        pass

    class RuleRowForm(PlainForm):  # type: ignore[misc]
        pass

    class StateRowForm(PlainForm):  # type: ignore[misc]
        pass

    class TransitionRowForm(PlainForm):  # type: ignore[misc]
        pass

    class RouteRowForm(PlainForm):  # type: ignore[misc]
        pass

    class CheckRowForm(PlainForm):  # type: ignore[misc]
        pass

    class EditorForm(Form):
        pass

    targets: dict[str | None, type[Any]] = {
        None: EditorForm,
        "fields": FieldRowForm,
        "notifications": RuleRowForm,
        "states": StateRowForm,
        "transitions": TransitionRowForm,
        "route": RouteRowForm,
        "tests": CheckRowForm,
    }
    for key in EDITOR_KEYS:
        _add_input(targets[key.list_key], key, choices, locales, new)
    for row_form, noun in (
        (FieldRowForm, lazy_gettext("Remove this field")),
        (RuleRowForm, lazy_gettext("Remove this message")),
        (StateRowForm, lazy_gettext("Remove this step")),
        (TransitionRowForm, lazy_gettext("Remove this action")),
        (RouteRowForm, lazy_gettext("Remove this rule")),
        (CheckRowForm, lazy_gettext("Remove this check")),
    ):
        row_form.source = HiddenField()
        row_form.remove = BooleanField(noun)
    EditorForm.fields = FieldList(FormField(FieldRowForm), min_entries=0, max_entries=60)
    EditorForm.rules = FieldList(FormField(RuleRowForm), min_entries=0, max_entries=40)
    EditorForm.states = FieldList(FormField(StateRowForm), min_entries=0, max_entries=30)
    EditorForm.transitions = FieldList(FormField(TransitionRowForm), min_entries=0, max_entries=60)
    EditorForm.routes = FieldList(FormField(RouteRowForm), min_entries=0, max_entries=50)
    EditorForm.checks = FieldList(FormField(CheckRowForm), min_entries=0, max_entries=100)
    EditorForm.comment = StringField(
        lazy_gettext("What changed (for the history)"), validators=[Length(max=500)]
    )
    return EditorForm


def _add_input(
    form_class: type[Any],
    key: EditorKey,
    choices: Mapping[str, list[tuple[str, Any]]],
    locales: tuple[str, ...],
    new: bool,
) -> None:
    """Give the form class the input of ``key`` (one per language for a text)."""
    if key.kind == "texts":
        per_language(
            form_class,
            key.name,
            locales,
            lambda code: lazy_gettext(key.label, language=code),
            key.max_length or 500,
            rows=key.rows,
        )
        return
    setattr(form_class, key.name, _unbound_field(key, choices, locales, new))


# The inputs a browser shows as a date or a time picker.
INPUT_TYPES = {"day": {"type": "date"}, "clock": {"type": "time"}}


def _unbound_field(
    key: EditorKey,
    choices: Mapping[str, list[tuple[str, Any]]],
    locales: tuple[str, ...],
    new: bool,
) -> Any:
    """The WTForms field of one key, by its kind."""
    label = lazy_gettext(key.label)
    extra: dict[str, Any] = {}
    if key.help:
        named = {"languages": " | ".join(locales)} if "%(languages)s" in key.help else {}
        extra["description"] = lazy_gettext(key.help, **named)
    render_kw: dict[str, Any] = {}
    if key.placeholder:
        render_kw["placeholder"] = key.placeholder
    if key.locked and not new:
        render_kw["readonly"] = True
    if key.kind in ("settings", "sessions", "scenarios", "week", "moments"):
        render_kw.update(rows=key.rows or 2, spellcheck="false")
    render_kw.update(INPUT_TYPES.get(key.kind, {}))
    if render_kw or key.locked:
        extra["render_kw"] = render_kw
    length = [Length(max=key.max_length)] if key.max_length else []
    offered = options(
        choices[key.choices]
        if key.choices
        else [(value, lazy_gettext(text)) for value, text in key.options]
    )
    if key.kind in ("flag", "presence", "member"):
        return BooleanField(label, **extra)
    if key.kind in ("number", "places"):
        bounds = NumberRange(min=key.minimum, max=key.maximum)
        return IntegerField(label, validators=[Optional(), bounds], **extra)
    if key.kind in ("choice", "group"):
        return SelectField(label, choices=offered, validate_choice=False, **extra)
    if key.kind == "checks":
        return SelectMultipleField(
            label,
            choices=offered,
            validate_choice=False,
            widget=ListWidget(prefix_label=False),
            option_widget=CheckboxInput(),
            **extra,
        )
    if key.kind == "lines":
        return FieldList(
            FormField(_choice_row(locales)), label, min_entries=0, max_entries=100, **extra
        )
    if key.kind == "condition":
        return ConditionField(label, **extra)
    if key.kind == "settings":
        return TextAreaField(label, validators=[*length, _valid_settings], **extra)
    if key.kind == "sessions":
        return TextAreaField(label, validators=[*length, _valid_sessions], **extra)
    if key.kind in ("scenarios", "week", "moments"):
        checks = {"scenarios": [_valid_scenarios], "week": [_valid_week]}.get(key.kind, [])
        return TextAreaField(label, validators=[*length, *checks], **extra)
    if key.kind in ("duration", "delay"):
        extra.get("render_kw", {}).pop("placeholder", None)  # "24h" means nothing here
        unit = key.unit or ("h" if key.kind == "delay" else "m")
        return DurationField(label, validators=length, default_unit=unit, **extra)
    return StringField(label, validators=length, **extra)


# Empty choice rows under a list question's choices: room to add some without a script.
SPARE_CHOICES = 2


def _choice_rows(
    options: list[tuple[str, dict[str, str]]], locales: tuple[str, ...]
) -> list[dict[str, str]]:
    rows = [
        {"value": value, **{f"label_{code}": labels.get(code, "") for code in locales}}
        for value, labels in options
    ]
    return rows + [{} for _ in range(SPARE_CHOICES)]


def _posted_choices(entries: Any, locales: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
    """The choices typed, one per row with some wording (a row left empty is no choice)."""
    options = []
    for entry in entries:
        sub = entry.form
        labels = {
            code: text.strip()
            for code in locales
            if (text := sub[f"label_{code}"].data or "").strip()
        }
        if labels:
            options.append(((sub.value.data or "").strip(), labels))
    return options


def _settings_text(settings: Mapping[str, Any]) -> str:
    return "\n".join(f"{name}: {_plain(value)}" for name, value in settings.items())


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _posted_settings(text: str) -> dict[str, Any] | str:
    """``name: value`` lines as a map (numbers and yes/no as such); the faulty line's text when a
    line is not ``name: value``."""
    settings: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
            return line.strip()
        settings[name] = _typed_setting(value.strip())
    return settings


def _valid_settings(_form: Any, field: Any) -> None:
    wrong = _posted_settings(field.data or "")
    if isinstance(wrong, str):
        raise ValidationError(
            gettext('Write each setting as "name: value"; this line is not: %(line)s', line=wrong)
        )


def _valid_sessions(_form: Any, field: Any) -> None:
    parsed = parse_sessions(field.data or "", (*_locales(), _locale()))
    if isinstance(parsed, tuple):
        number, word = parsed
        raise ValidationError(
            gettext(
                "Line %(number)s: write the days, then the time, like: Monday Wednesday 18:00 "
                "(not understood: %(word)s).",
                number=number,
                word=word,
            )
        )


def _valid_scenarios(_form: Any, field: Any) -> None:
    if isinstance(parse_scenarios(field.data or ""), str):
        raise ValidationError(
            gettext(
                "These checks cannot be read: write them as in the workflow file, each case "
                "starting with a line like - name: Mornings are offered"
            )
        )


def _valid_week(_form: Any, field: Any) -> None:
    parsed = parse_week(field.data or "", (*_locales(), _locale()))
    if isinstance(parsed, tuple):
        number, word = parsed
        raise ValidationError(
            gettext(
                "Line %(number)s: write the days, then the hours, like: Monday-Friday "
                "09:00-17:00 (not understood: %(word)s).",
                number=number,
                word=word,
            )
        )


def scenario_results(checked: CheckedWorkflow) -> list[CaseResult]:
    """The workflow's checks before publishing (``tests``), run."""
    return run_cases(checked.workflow, checked.definition.get("tests") or [])


def _results_by_place(
    results: Sequence[CaseResult], places: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    """The checks' results for the page: each row's (by its index) and the text box's."""
    rows: dict[int, CaseResult] = {}
    advanced: list[CaseResult] = []
    for result in results:
        kind, index = places[result.index] if result.index < len(places) else ("advanced", 0)
        if kind == "row":
            rows[index] = result
        else:
            advanced.append(result)
    return {"row_checks": rows, "advanced_checks": advanced}


def flash_scenario_results(results: Sequence[CaseResult]) -> None:
    """Say how the checks went after a save: a failing one does not stop a draft."""
    if not results:
        return
    failed = [message for result in results for message in result.messages()]
    if not failed:
        flash(gettext("Checks before publishing: all %(count)s passed.", count=len(results)))
        return
    flash(
        gettext(
            "Checks before publishing: %(failed)s of %(count)s failed. The draft is saved; it "
            "cannot be published until they pass.",
            failed=sum(1 for r in results if not r.passed),
            count=len(results),
        ),
        "warning",
    )
    for message in failed:
        flash(message, "warning")


def _typed_setting(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    if re.fullmatch(r"-?\d{1,15}\.\d{1,15}", text):
        return float(text)
    return text


def _input_data(key: EditorKey, value: Any, locales: tuple[str, ...]) -> dict[str, Any]:
    """The form's data of one key's value (a text gives one entry per language)."""
    if key.kind == "texts":
        return {f"{key.name}_{code}": value.get(code, "") for code in locales}
    if key.kind == "tags":
        return {key.name: ", ".join(value)}
    if key.kind == "lines":
        return {key.name: _choice_rows(value, locales)}
    if key.kind == "settings":
        return {key.name: _settings_text(value)}
    if key.kind == "sessions":
        return {key.name: sessions_text(value, _locale())}
    if key.kind == "times":
        return {key.name: ", ".join(value)}
    if key.kind == "week":
        return {key.name: week_text(value, _locale())}
    if key.kind == "moments":
        return {key.name: "\n".join(value)}
    return {key.name: value}


def _keys_data(
    list_key: str | None, values: Mapping[str, Any], locales: tuple[str, ...]
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in keys_of(list_key):
        data.update(_input_data(key, values.get(key.name, key.initial), locales))
    return data


def form_data(values: StructuredWorkflow, locales: tuple[str, ...]) -> dict[str, Any]:
    """The editor's values as the form's data."""
    data = _keys_data(None, values.values, locales)
    for name in ROW_LISTS:
        rows = values.rows(name)
        data[ROW_LISTS[name]] = [
            {
                **_keys_data(name, row.values, locales),
                "source": "" if row.source is None else str(row.source),
            }
            for row in rows
        ]
    return data


def _source(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 5 else None


def _input_value(key: EditorKey, form: Any, locales: tuple[str, ...]) -> Any:
    """One key's value as posted."""
    if key.kind == "texts":
        return {code: (form[f"{key.name}_{code}"].data or "") for code in locales}
    data = form[key.name].data
    if key.kind in ("flag", "presence", "member"):
        return bool(data)
    if key.kind == "places":
        return data or key.initial
    if key.kind == "number":
        return data
    if key.kind == "checks":
        return list(data or []) or key.initial
    if key.kind == "tags":
        tags = [t.strip().lower() for t in (data or "").split(",") if t.strip()]
        return list(dict.fromkeys(tags))
    if key.kind == "lines":
        return _posted_choices(form[key.name].entries, locales)
    if key.kind == "condition":
        return dict(data or {})
    if key.kind == "settings":
        settings = _posted_settings(data or "")
        return settings if isinstance(settings, dict) else key.initial
    if key.kind == "sessions":
        parsed = parse_sessions(data or "", (*locales, _locale()))
        return parsed if isinstance(parsed, list) else key.initial
    if key.kind == "times":
        return [t for t in re.split(r"[\s,;]+", data or "") if t]
    if key.kind == "week":
        week = parse_week(data or "", (*locales, _locale()))
        return week if isinstance(week, dict) else key.initial
    if key.kind == "moments":
        return [" ".join(line.split()) for line in (data or "").splitlines() if line.strip()]
    return (data or "").strip() or key.initial


def _posted(list_key: str | None, form: Any, locales: tuple[str, ...]) -> dict[str, Any]:
    return {key.name: _input_value(key, form, locales) for key in keys_of(list_key)}


def values_of(
    form: Any, locales: tuple[str, ...], keep_removed: bool = False
) -> StructuredWorkflow:
    """The editor's values from the posted form (rows marked for removal left out)."""
    lists: dict[str, list[Row]] = {list_key: [] for list_key in ROW_LISTS}
    for list_key, rows in lists.items():
        for entry in form[ROW_LISTS[list_key]].entries:
            sub = entry.form
            if sub.remove.data and not keep_removed:
                continue
            rows.append(
                Row(
                    _posted(list_key, sub, locales),
                    source=_source(sub.source.data),
                    removed=bool(sub.remove.data),
                )
            )
    return StructuredWorkflow(
        _posted(None, form, locales),
        lists["fields"],
        lists["notifications"],
        lists["states"],
        lists["transitions"],
        lists["route"],
        lists["tests"],
    )


def attach_problems(
    form: Any,
    problems: list[Problem],
    locales: tuple[str, ...],
    checks: Sequence[tuple[str, int]] = (),
) -> list[Problem]:
    """Put each problem beside its input; return those no input shows (listed at the top).
    ``checks``: where each case of ``tests`` comes from (a check row, or the text box)."""
    loose = []
    steps = [str(entry.form["name"].data or "") for entry in form.states.entries]
    for problem in problems:
        if problem.severity != "error":
            continue
        name = field_of_problem(problem, steps, checks)
        target = _input(form, name, locales) if name else None
        if target is None:
            loose.append(problem)
            continue
        target.errors = [*target.errors, problem_text(problem)]
    return loose


_TEXTS = {(key.list_key, key.name) for key in EDITOR_KEYS if key.kind == "texts"}


def _input(form: Any, name: str, locales: tuple[str, ...]) -> Any:
    if (None, name) in _TEXTS:
        return form[f"{name}_{locales[0]}"]
    if name in form:
        return form[name]
    parts = name.split("-")
    lists = {prefix: key for key, prefix in ROW_LISTS.items()}
    if len(parts) == 3 and parts[0] in lists and parts[1].isdigit():
        entries = form[parts[0]].entries
        index = int(parts[1])
        if index >= len(entries):
            return None
        sub = entries[index].form
        list_key, key = lists[parts[0]], parts[2]
        if (list_key, key) in _TEXTS:
            return sub[f"{key}_{locales[0]}"]
        if key == "include" and sub.include.data:
            return sub.include
        return sub[key] if key in sub else sub[ROW_ANCHORS[list_key]]
    return None


# --- the view ---------------------------------------------------------------------------------


class WorkflowsView(PreviewMixin, PublishMixin, StartersMixin, AdminView):
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
        publish = request.form.get("publish") == "1"
        offer_in_calendar(self.db, calendar, record, actor=self.actor, publish=publish)
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
        states = _step_names(data, formdata) or states_of(definition)
        events = events_of(definition)
        form_class = editor_form(
            _locales(),
            [*events, *(name for name in states if name not in events)],
            sorted(context.known_channels or {"email"}),
            sorted(context.field_sets),
            new,
            plugin_strategies=sorted(context.assignments),
            plugin_field_types=instance().database.plugins.field_types,
            menus={
                "states": [(name, _state_label(name)) for name in states],
                "providers": [
                    ("", lazy_gettext("The fixed link below")),
                    *(
                        (name, _provider_label(name))
                        for name in sorted(context.meeting_providers or ())
                    ),
                ],
            },
        )
        form = form_class(formdata=formdata, data=data)
        _keep_unknown_choices(form)
        if not form.routes.entries:
            form.routes.append_entry()  # a rule to fill in; left empty, it writes nothing
        if not form.checks.entries:
            form.checks.append_entry()  # a check to fill in; left empty, it writes nothing
        _offer_questions(form, _locales())
        return form

    @expose("/new", methods=("GET", "POST"))
    def create(self) -> Any:
        calendar = self.calendar
        self.require(calendar.id, "admin", "create workflow")
        if request.method == "POST":
            return self._post_editor(None, True)
        start = request.args.get("start", "")
        if not start:
            return self._chooser()
        # A blank scenario, or a starter (its text: comments and all, a free identifier).
        text = self._starter_text(start)
        data = load_map(text)
        values = structured(data, _fallback()) if text else blank_workflow("", {})
        form = self._editor_form(form_data(values, _locales()), dict(data), True)
        return self._editor_page(form, None, [], None)

    @expose("/<slug>/edit", methods=("GET", "POST"))
    def edit(self, slug: str) -> Any:
        record = self._editable(slug)
        version = latest_version(self.db, record.id)
        assert version is not None
        if request.method == "GET":
            try:
                data = load_map(version.source_text)
            except DocumentError as exc:
                # A version stored before the YAML limits: only its text can be edited.
                flash(
                    gettext(
                        "This version cannot be opened in the form: %(problem)s. Edit its YAML.",
                        problem=str(exc),
                    ),
                    "error",
                )
                return redirect(self.get_url(".yaml", slug=slug))
            values = structured(data, _fallback())
            form = self._editor_form(form_data(values, _locales()), dict(data), False)
            # The saved version's checks, each result in its row (a save leads back here).
            tests = version.definition.get("tests") or []
            results = run_cases(workflow_of(version), tests) if tests else None
            places = check_places(values, version.source_text)
            return self._editor_page(form, record, [], None, checks=results, places=places)
        return self._post_editor(record, False)

    def _post_editor(self, record: WorkflowRecord | None, new: bool) -> Any:
        locales = _locales()
        version = latest_version(self.db, record.id) if record else None
        source = version.source_text if version else None
        if record is None:
            # A new scenario from a starter writes into the starter's text (its comments stay).
            source = self._starter_text(
                request.form.get("starter") or request.args.get("start", "")
            )
        try:
            definition = dict(load_map(source)) if source else {}
        except DocumentError:
            assert record is not None  # a new workflow has no stored text
            return redirect(self.get_url(".yaml", slug=record.slug))
        form = self._editor_form(None, definition, new, formdata=request.form)
        if not form.validate_on_submit():
            if form.csrf_token.errors:
                deny(self.access, "workflow editor without a valid form", self.calendar.id)
            return self._editor_page(form, record, [], None, 422)
        op = request.form.get("op", "save")
        if op not in {"save", "preview"}:
            values = values_of(form, locales, keep_removed=True)
            _apply_op(values, op, sorted(_context().field_sets))
            for list_key in ROW_LISTS:
                values.rows(list_key)[:] = [r for r in values.rows(list_key) if not r.removed]
            name_steps(values, _fallback())
            fresh = self._editor_form(form_data(values, locales), definition, new)
            fresh.comment.data = form.comment.data
            return self._editor_page(fresh, record, [], None)
        values = values_of(form, locales)
        if record is not None:
            values.values["id"] = record.slug
            if in_use(self.db, record):
                keep_names(values, source)
        text = write(values, source, _fallback())
        places = check_places(values, source)
        checked, problems = self._check(text, values["id"], record)
        if checked is None or errors_only(problems):
            fresh = self._editor_form(form_data(values, locales), definition, new)
            fresh.comment.data = form.comment.data
            loose = attach_problems(fresh, problems, locales, places)
            return self._editor_page(fresh, record, loose, text, 422, places=places)
        if op == "preview":
            fresh = self._editor_form(form_data(values, locales), definition, new)
            fresh.comment.data = form.comment.data
            return self._editor_page(
                fresh,
                record,
                [],
                text,
                preview=checked.workflow,
                checks=scenario_results(checked),
                places=places,
            )
        flash_scenario_results(scenario_results(checked))
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
        if record is None:
            record = create_calendar_workflow(
                self.db, checked, self.calendar, origin=origin, actor=self.actor
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
            author=self.access.actor,
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
        checks: list[CaseResult] | None = None,
        places: Sequence[tuple[str, int]] = (),
    ) -> Any:
        if record is not None and in_use(self.db, record):
            _fix_names(form)
        return self.render(
            "bookwise_admin/workflows/editor.html",
            form=form,
            record=record,
            loose=loose,
            locales=_locales(),
            has_errors=bool(loose) or bool(form.errors) or status == 422,
            yaml_text=text,
            field_sets=bool(_context().field_sets),
            layout={section: layout(section) for section in SECTIONS},
            lifecycle=_lifecycle_picture(form, _locales()),
            shown_languages=_languages_shown(form, _locales(), self.calendar.default_locale),
            language_names={code: language_name(code, _locale()) for code in _locales()},
            error_links=error_summary(form),
            # The inputs under a question's "More options" (opened when one has a problem).
            more_inputs=[
                f"{key.name}_{_locales()[0]}" if key.kind == "texts" else key.name
                for key in keys_in("question_more")
            ],
            preview=self._preview_values(preview) if preview else None,
            checks=checks,
            **_results_by_place(checks or [], places),
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
                    flash_scenario_results(scenario_results(checked))
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
        self.commit_restore(number, saved.number if saved is not None else None)
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


# How the error summary names a row: "Question 2", "Message 1"...
ROW_NOUNS = {
    "fields": N_("Question %(n)s"),
    "rules": N_("Message %(n)s"),
    "states": N_("Step %(n)s"),
    "transitions": N_("Action %(n)s"),
    "routes": N_("Rule %(n)s"),
    "checks": N_("Check %(n)s"),
}


def error_summary(form: Any) -> list[tuple[str, str, str]]:
    """Each input with a problem, in the order of the page: (its id, what it is, the problem),
    for the summary at the top that links to each."""
    out: list[tuple[str, str, str]] = []

    def visit(fields: Any, where: str) -> None:
        for field in fields:
            if isinstance(field, FieldList) and field.name in ROW_NOUNS and not where:
                for index, entry in enumerate(field.entries, start=1):
                    visit(entry.form, gettext(ROW_NOUNS[field.name], n=index))
                continue
            messages = [e for e in field.errors if isinstance(e, str)]
            if messages and field.type != "CSRFTokenField":
                label = str(field.label.text)
                out.append((field.id, f"{where} · {label}" if where else label, messages[0]))

    visit(form, "")
    return out


def _lifecycle_picture(form: Any, locales: tuple[str, ...]) -> dict[str, Any]:
    """The lifecycle as the page holds it: a diagram, and its moves in words."""
    values = values_of(form, locales)
    here = _locale()
    steps = []
    for row in values.states:
        name = str(row["name"] or "")
        if name:
            label = _wording_in(row["label"], here, locales) or str(_state_label(name))
            steps.append(Step(name, label, bool(row["initial"]), bool(row["final"])))
    words = {step.name: step.label for step in steps}
    moves, lines = [], []
    for row in values.transitions:
        label = _wording_in(row["label"], here, locales) or action_name(str(row["name"] or ""))
        target, sources = str(row["to"] or ""), tuple(str(s) for s in row["from"] or ())
        if not target or not sources:
            continue
        moves.append(Move(label, sources, target))
        lines.append(
            gettext(
                "%(sources)s → %(action)s (%(who)s) → %(target)s",
                sources=" / ".join(words.get(s, s) for s in sources),
                action=label,
                who=", ".join(str(ROLE_NAMES.get(r, r)) for r in row["by"] or ("staff",)),
                target=words.get(target, target),
            )
        )
    title = gettext("The steps of a booking")
    svg = lifecycle_svg(steps, moves, title=title) if steps else ""
    # lifecycle_svg escapes every word it draws.
    return {"svg": Markup(svg), "lines": lines, "names": words}  # noqa: S704


def _wording_in(texts: Any, here: str, locales: tuple[str, ...]) -> str:
    """A text in the page's language, else in the first language that has it."""
    if not isinstance(texts, Mapping):
        return str(texts or "")
    for code in (here, *locales):
        if texts.get(code):
            return str(texts[code])
    return ""


ROLE_NAMES = {value: lazy_gettext(label) for value, label in ROLE_LABELS}


def _languages_shown(form: Any, locales: tuple[str, ...], calendar_locale: str) -> list[str]:
    """The languages whose boxes the editor shows at first: the calendar's, the instance's
    default, and every one the scenario already has words in (the others are a tick away)."""
    shown = {calendar_locale, _fallback()}

    def visit(fields: Any) -> None:
        for field in fields:
            if isinstance(field, FieldList):
                for entry in field.entries:
                    visit(entry.form if isinstance(entry, FormField) else [entry])
            elif isinstance(field.data, str) and field.data.strip():
                code = field.name.rpartition("_")[2]
                if code in locales:
                    shown.add(code)

    visit(form)
    return [code for code in locales if code in shown]


def _fix_names(form: Any) -> None:
    """Bookings use the workflow: the identifiers of the questions and steps they store answers
    and states under are shown, not editable (:func:`keep_names` keeps them on save)."""
    for rows, name in ((form.fields, "id"), (form.states, "name")):
        for entry in rows.entries:
            if entry.form.source.data not in (None, ""):
                field = entry.form[name]
                field.render_kw = {**(field.render_kw or {}), "readonly": True}
                field.description = gettext("Kept as it is: bookings already use it.")


def _step_names(data: Mapping[str, Any] | None, formdata: Any) -> list[str]:
    """The lifecycle's steps as the page holds them (a step added is offered at once)."""
    if data is not None:
        names = [str(row.get("name") or "") for row in data.get("states") or []]
    elif formdata is not None:
        names = [
            str(formdata.get(f"states-{index}-name") or "")
            for index in range(30)
            if f"states-{index}-name" in formdata
        ]
    else:
        names = []
    return [name for name in dict.fromkeys(names) if name]


def _offer_questions(form: Any, locales: tuple[str, ...]) -> None:
    """Each question's "Ask only if" offers the scenario's other questions, by their words."""
    named = []
    for entry in form.fields.entries:
        sub = entry.form
        fid = str(sub.id.data or "")
        if fid and not sub.include.data:
            words = next((sub[f"label_{c}"].data for c in locales if sub[f"label_{c}"].data), "")
            named.append((fid, f"{words} ({fid})" if words else fid))
    for entry in form.fields.entries:
        own = str(entry.form.id.data or "")
        entry.form.show_if.questions = [(fid, words) for fid, words in named if fid != own]
    # A route tests any question but the client's name and e-mail (every client gives them).
    for entry in form.routes.entries:
        entry.form.condition.questions = [
            (fid, words) for fid, words in named if fid not in ("name", "email")
        ]


def _keep_unknown_choices(form: Any) -> None:
    """A menu's value that it does not offer (a provider or strategy of a plugin not enabled
    here) stays offered under its own name, so that saving does not drop it unseen."""
    for field in form:
        if isinstance(field, FieldList):
            for entry in field.entries:
                if isinstance(entry, FormField):
                    _keep_unknown_choices(entry.form)
        elif (
            type(field) is SelectField
            and isinstance(field.data, str)
            and field.data
            and field.data not in {choice.value for choice in field.choices}
        ):
            field.choices = [*field.choices, *options([field.data])]


def _parses(text: str) -> bool:
    try:
        load_map(text)
    except Exception:  # any YAML error: the checker reports it properly
        return False
    return True


def _apply_op(values: StructuredWorkflow, op: str, field_sets: list[str]) -> None:
    """The editor's buttons that change its rows (no JavaScript needed): add, move up or down."""
    if op == "add_field":
        values.fields.append(new_row("fields"))
    elif op == "add_include" and field_sets:
        values.fields.append(new_row("fields", include=field_sets[0]))
    elif op == "add_rule":
        values.rules.append(new_row("notifications", on="confirmed", to_client=True))
    elif op == "add_state":
        values.states.append(new_row("states", holds_slot=True))
    elif op == "add_transition":
        values.transitions.append(new_row("transitions"))
    elif op == "add_route":
        values.routes.append(new_row("route"))
    elif op == "add_check":
        values.checks.append(new_row("tests"))
    elif op in LIFECYCLES:
        values.states, values.transitions = lifecycle_rows(LIFECYCLES[op], _fallback())
    else:
        kind, _, rest = op.partition(":")
        direction, _, index_text = rest.partition(":")
        lists = {prefix: values.rows(list_key) for list_key, prefix in ROW_LISTS.items()}
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
