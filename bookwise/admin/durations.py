"""A duration as people give one: a number and a unit ("30" "minutes", "24" "hours"), where the
workflow language writes ``30m`` and ``24h``.

The field posts ``NAME-amount`` and ``NAME-unit`` and holds the workflow language's spelling;
a form that posts ``NAME`` itself (a script, an older page) is read as before. A value that is
not a duration (a typing mistake in a file) is shown as text, so that it can be corrected
where it is.
"""

from __future__ import annotations

from typing import Any, cast

from flask_babel import lazy_gettext
from markupsafe import Markup
from wtforms import StringField
from wtforms.utils import unset_value
from wtforms.widgets import TextInput

from bookwise.durations import parse_duration

UNITS = (
    ("m", lazy_gettext("minutes")),
    ("h", lazy_gettext("hours")),
    ("d", lazy_gettext("days")),
)


def split_duration(text: str) -> tuple[str, str] | None:
    """``"90m"`` -> ``("90", "m")``, ``"1h30m"`` -> ``("90", "m")``, ``"24h"`` -> ``("24", "h")``,
    ``"48h"`` -> ``("2", "d")``: the largest unit that counts it whole (days from two days on);
    None for what is not a duration."""
    try:
        minutes = int(parse_duration(text).total_seconds() // 60)
    except ValueError:
        return None
    if minutes and minutes % (24 * 60) == 0 and minutes >= 2 * 24 * 60:
        return str(minutes // (24 * 60)), "d"  # 24 hours stays 24 hours: people say so
    if minutes and minutes % 60 == 0:
        return str(minutes // 60), "h"
    return str(minutes), "m"


class DurationInput:
    """A number input and a unit menu, side by side."""

    def __call__(self, field: DurationField, **kwargs: Any) -> Markup:
        value = field._value()
        parts = split_duration(value) if value else ("", field.default_unit)
        if parts is None:
            return cast(Markup, TextInput()(field, **kwargs))
        amount, unit = parts
        field_id = kwargs.pop("id", field.id)
        css = kwargs.pop("class", kwargs.pop("class_", ""))
        described = kwargs.get("aria-describedby") or kwargs.get("aria_describedby") or ""
        number = Markup(
            '<input type="number" min="0" step="1" inputmode="numeric" id="{}" name="{}-amount" '
            'value="{}" class="{} duration-amount"{}>'
        ).format(
            field_id,
            field.name,
            amount,
            css,
            Markup(' aria-describedby="{}"').format(described) if described else "",
        )
        choices = Markup("").join(
            Markup('<option value="{}"{}>{}</option>').format(
                code, Markup(" selected") if code == unit else "", label
            )
            for code, label in UNITS
        )
        menu = Markup('<select name="{}-unit" class="{} duration-unit" aria-label="{}">{}</select>')
        menu = menu.format(field.name, css, lazy_gettext("Unit"), choices)
        return Markup('<span class="duration-input">{}{}</span>').format(number, menu)


class DurationField(StringField):  # type: ignore[misc]
    """A duration in the workflow language's spelling, given as a number and a unit."""

    widget = DurationInput()

    def __init__(self, *args: Any, default_unit: str = "m", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_unit = default_unit

    def process(self, formdata: Any, data: Any = unset_value, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters)
        amount_name = f"{self.name}-amount"
        if formdata is None or amount_name not in formdata:
            return
        if self.raw_data and str(self.raw_data[0]).strip():
            return  # the duration itself was posted (a script, or the text input of a mistake)
        amount = str(formdata.get(amount_name, "")).strip()
        unit = str(formdata.get(f"{self.name}-unit", self.default_unit))
        unit = unit if unit in dict(UNITS) else self.default_unit
        self.data = f"{amount}{unit}" if amount else ""
        if amount and not amount.isdigit():  # "-5", "1,5": said here, in words
            self.process_errors.append(lazy_gettext("Give a whole number, like 30 or 365."))
