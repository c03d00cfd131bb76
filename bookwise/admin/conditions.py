"""A question's ``show_if`` as people say it: "Ask only if [question] [is] [value]".

The field posts ``NAME-field``, ``NAME-test`` and ``NAME-value`` and holds
``{"field": ..., "test": ..., "value": ...}`` (empty: always asked), as
:mod:`bookwise.workflows.editing` reads and writes it. The questions it offers are set on the
bound field by the view (``field.questions``), the other questions of the scenario.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext
from markupsafe import Markup
from wtforms import Field

# The tests, in the words of the editor (the workflow language's names, and ``not_answered``).
TESTS = (
    ("equals", lazy_gettext("is")),
    ("not_equals", lazy_gettext("is not")),
    ("in", lazy_gettext("is one of")),
    ("not_in", lazy_gettext("is none of")),
    ("lt", lazy_gettext("is less than")),
    ("lte", lazy_gettext("is at most")),
    ("gt", lazy_gettext("is more than")),
    ("gte", lazy_gettext("is at least")),
    ("answered", lazy_gettext("is answered")),
    ("not_answered", lazy_gettext("is left empty")),
)


def _options(choices: list[tuple[str, Any]], chosen: str) -> Markup:
    return Markup("").join(
        Markup('<option value="{}"{}>{}</option>').format(
            value, Markup(" selected") if value == chosen else "", label
        )
        for value, label in choices
    )


class ConditionInput:
    """Three controls side by side: the question, the test, the value."""

    def __call__(self, field: ConditionField, **kwargs: Any) -> Markup:
        data = field.data or {}
        field_id = kwargs.pop("id", field.id)
        css = kwargs.pop("class", kwargs.pop("class_", ""))
        described = kwargs.get("aria-describedby") or ""
        questions = [("", lazy_gettext("(always ask)")), *field.questions]
        chosen = str(data.get("field") or "")
        if chosen and chosen not in {value for value, _ in questions}:
            questions.append((chosen, chosen))
        which = Markup('<select id="{}" name="{}-field" class="{} condition-field"{}>{}</select>')
        which = which.format(
            field_id,
            field.name,
            css,
            Markup(' aria-describedby="{}"').format(described) if described else "",
            _options(questions, chosen),
        )
        test = Markup(
            '<select name="{}-test" class="{} condition-test" aria-label="{}">{}</select>'
        )
        test = test.format(
            field.name,
            css,
            lazy_gettext("Test"),
            _options(list(TESTS), str(data.get("test") or "")),
        )
        value = Markup(
            '<input type="text" name="{}-value" value="{}" class="{} condition-value" '
            'aria-label="{}" maxlength="500">'
        ).format(field.name, str(data.get("value") or ""), css, lazy_gettext("Value"))
        return Markup('<span class="condition-input">{}{}{}</span>').format(which, test, value)


class ConditionField(Field):  # type: ignore[misc]
    """``show_if`` given as a question, a test and a value."""

    widget = ConditionInput()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.questions: list[tuple[str, str]] = []

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Unused: the three parts are read in :meth:`process`."""

    def process(self, formdata: Any, data: Any = None, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters)
        if formdata is None or f"{self.name}-field" not in formdata:
            return
        chosen = str(formdata.get(f"{self.name}-field", "")).strip()
        test = str(formdata.get(f"{self.name}-test", "")).strip()
        if test not in dict(TESTS):
            test = "equals"
        value = str(formdata.get(f"{self.name}-value", "")).strip()[:500]
        self.data = {"field": chosen, "test": test, "value": value} if chosen else {}

    def _value(self) -> str:
        return ""
