"""Message templates: where they come from, how they are checked, how they are rendered. Pure.

Templates are Jinja2 rendered in an ``ImmutableSandboxedEnvironment``: a template edited in the
back office can read the documented variables and nothing else of the application (no
attribute starting with ``_``, no method that changes data), and what it may compute is bounded
(:data:`MAX_VALUE` and the limits beside it: no huge number, text, padding, loop or output).
Text parts are rendered as text, HTML parts with autoescape on.

Each template is a folder named after it with one ``<locale>.yaml`` per language; each file maps
an audience (``client`` or ``staff``) to its channels (``email``, ``sms``, ...) and their parts
(``subject``, ``text``, optionally ``html``).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache, lru_cache, update_wrapper, wraps
from pathlib import Path
from typing import Any

from jinja2 import Template, TemplateError, Undefined, meta, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError, TemplateRuntimeError
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, safe_range
from jinja2.utils import Namespace
from markupsafe import EscapeFormatter, Markup

from bookwise.documents import parse_document
from bookwise.errors import N_

# The variables a template may use, documented in docs/notifications.md.
VARIABLES: dict[str, str] = {
    "calendar": N_("the business: .name, .address, .phone, .reply_to"),
    "service": N_("what is booked: .name, .duration (written out, like '45 minutes')"),
    "booking": N_(
        "the booking: .start (day and time, with the time zone when it is not the business's), "
        ".end (time), .when (day, start and end, with the time zone), .date, .time, .timezone, "
        ".state, .location, .meeting_url, .reference; for staff, .admin_url (the booking in the "
        "back office) and .approved (true when staff approved the request)"
    ),
    "previous": N_("for rescheduled: .start, the time before the change"),
    "client": N_("the client: .name, .email, .phone"),
    "staff": N_("the staff member: .name, .email"),
    "manage_url": N_("the client's link to see, move or cancel the booking"),
    "booking_url": N_("the service's booking page, to book again"),
    "reason": N_("the reason given for a decline, a cancellation or time off (may be empty)"),
    "answers": N_("the client's answers, each with .label and .value (sensitive ones left out)"),
    "consent": N_(
        "the consent the client gave when booking (empty without one): .text (as shown to them), "
        ".link, .version (the workflow version and the text's hash), .given_at, .withdrawn_at"
    ),
    "time_off": N_("for time-off: .start, .end"),
    "series": N_(
        "for the one confirmation of a series (a weekly course): .occurrences (each occurrence's "
        "day and time), .count (how many were booked); for the one message of cancelling the "
        "rest of a series, .cancelled (each occurrence cancelled); for the one message of a "
        "series approved or declined at once, .changed (each occurrence approved or declined); "
        "empty otherwise"
    ),
    "invitation": N_("for staff-invitation: .accept_url, .decline_url"),
    "offer": N_(
        "for waitlist_offer: .start (the place offered), .expires (until when it is held), "
        ".accept_url (the client's page to accept it or leave the waitlist)"
    ),
    "waiting": N_(
        "for waitlist_joined: .wanted (the time, or day, waited for), .hold (how long a freed "
        "place is held), .page_url (the client's page: their place in line, leave the list)"
    ),
    "source": N_(
        "for calendar-feed-failing: .name (the calendar that cannot be read), .since, .problem "
        "(what is wrong, in words), .admin_url (the staff member's page in the back office)"
    ),
}
AUDIENCES = ("client", "staff")
PARTS = ("subject", "text", "html")


class _Blank(Undefined):
    """A value the message does not have (no meeting link, no reason) renders as nothing."""

    def __str__(self) -> str:
        return ""


# --- what a template may compute ----------------------------------------------------------------
#
# A template edited in the back office runs in the web process (the live preview) and in the
# worker: it must not be able to freeze either, nor fill their memory. Jinja's sandbox keeps a
# template away from the application but lets it compute without bound (``7 ** 10000000``,
# ``'x' * 5000000``, two nested loops of 100,000 turns). Every way a template can build a value,
# write text or loop is therefore bounded, and the bound is checked *before* the work is done
# (the size of ``'x' * n`` is known before the string is made). Documented in
# docs/notifications.md ("What a template may compute").

#: Characters of text, or items of a list, in one value a template builds (``*``, ``+``, ``~``,
#: ``join``, ``replace``, a list written in the template, what a filter or a method returns).
MAX_VALUE = 100_000
#: Characters one part (subject, text, HTML) may write, counted as they are written (text
#: captured by ``{% set %}`` blocks and macros counts too).
MAX_OUTPUT = 200_000
#: Bits of a whole number a template computes (about 1,200 decimal digits).
MAX_INT_BITS = 4_096
#: Width, padding, precision or indent a template may ask for (``center``, ``ljust``, ``rjust``,
#: ``zfill``, ``expandtabs``, ``indent``, format widths like ``{:>20}`` or ``%20s``, the size of
#: a ``batch`` or of a ``slice``).
MAX_WIDTH = 1_000
#: Numbers ``range()`` may give in one render, all ranges together.
MAX_RANGE_ITEMS = 10_000
#: Loop turns and calls (of macros, methods, ``loop()``) in one render.
MAX_STEPS = 10_000
#: Depth of lists and mappings inside each other in a value a template builds.
MAX_DEPTH = 100


class TemplateTooCostly(TemplateRuntimeError):
    """A template asked for more work or a bigger value than a message may need."""


@dataclass
class _Budget:
    """What one render has used so far."""

    output: int = 0
    steps: int = 0
    range_items: int = 0
    sizes: dict[int, tuple[Any, int]] = field(default_factory=dict)

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateTooCostly(
                f"more than {MAX_STEPS} loop turns and calls; a message needs far fewer"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("bookwise_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # outside a render: compile-time folding of constants
        raise TemplateTooCostly("this is computed while rendering only")
    return budget


def _size(value: Any, depth: int = 0, seen: dict[int, tuple[Any, int]] | None = None) -> int:
    """About how many characters ``value`` takes written out: a text's length, a number's
    digits, a list's or mapping's items and all they hold (a list repeated inside another counts
    each time: writing it out writes it each time). Stops counting past :data:`MAX_VALUE`."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return 1
    if isinstance(value, int):
        return 1 + value.bit_length() // 3
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    if not isinstance(value, (list, tuple, dict, set, frozenset)):
        return 1
    if depth > MAX_DEPTH:
        raise TemplateTooCostly(f"lists or mappings nested more than {MAX_DEPTH} deep")
    if seen is None:
        budget = _BUDGET.get()
        seen = budget.sizes if budget is not None else {}
    known = seen.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    total = len(value)
    items = (item for pair in value.items() for item in pair) if isinstance(value, dict) else value
    for item in items:
        total += _size(item, depth + 1, seen)
        if total > MAX_VALUE:
            break
    seen[id(value)] = (value, total)  # the value is kept so that its id is not reused
    return total


def _fit(value: Any) -> Any:
    """``value`` if a template may hold it; :class:`TemplateTooCostly` if it is too big."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateTooCostly(
                f"a number of more than {MAX_INT_BITS} bits; write the number out instead"
            )
        return value
    size = _size(value)
    if size > MAX_VALUE:
        raise TemplateTooCostly(
            f"a value of more than {MAX_VALUE} characters or items (about {size}); "
            "write the text out instead of repeating it"
        )
    return value


def _fits(size: int, what: str) -> None:
    """Refuse, before it is made, a value that would be ``size`` characters or items."""
    if size > MAX_VALUE:
        raise TemplateTooCostly(
            f"{what} would make a value of about {size} characters or items; at most {MAX_VALUE}"
        )


def _width(width: Any, what: str) -> None:
    """Refuse a width, padding or count above :data:`MAX_WIDTH`."""
    if isinstance(width, str):
        width = len(width)
    if isinstance(width, int) and width > MAX_WIDTH:
        raise TemplateTooCostly(f"{what} of {width}; at most {MAX_WIDTH}")


def _width_digits(digits: str) -> None:
    """A width written in a format (``{:>20}``, ``%20s``)."""
    if len(digits) > 6:
        raise TemplateTooCostly(f"a format width of {digits[:12]}; at most {MAX_WIDTH}")
    _width(int(digits), "a format width")


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too big, before computing it."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        bits = right * math.log2(abs(left))
        if bits > MAX_INT_BITS:
            raise TemplateTooCostly(
                f"{_short(left)} ** {_short(right)} would be a number of about {bits:.0f} bits; "
                f"at most {MAX_INT_BITS}"
            )
    elif operator == "*" and ints:
        if _int_bits(left) + _int_bits(right) > MAX_INT_BITS + 1:
            raise TemplateTooCostly(
                f"a product of more than {MAX_INT_BITS} bits; write the number out instead"
            )
    elif operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(times, int) and isinstance(sequence, (str, bytes, list, tuple)):
                _fits(_size(sequence) * max(times, 0), "repeating with *")
    elif operator == "+" and not ints:
        if isinstance(left, (str, bytes, list, tuple)) and isinstance(
            right, (str, bytes, list, tuple)
        ):
            _fits(_size(left) + _size(right), "joining with +")
    elif operator == "%" and isinstance(left, str):
        _check_percent(left, right)


_PERCENT = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")


def _check_percent(template: str, values: Any) -> None:
    """``'%20s' % value``: widths and precisions written in the template, and the size of the
    result (each ``%`` field written out), are checked before formatting."""
    fields = 0
    for match in _PERCENT.finditer(template):
        if match.group(0) == "%%":
            continue
        fields += 1
        for number in (match.group(2), match.group(3)):
            if number == "*":
                raise TemplateTooCostly(
                    "a width given by a value (%*s); write the width in the template"
                )
            if number is not None:
                _width_digits(number)
    if isinstance(values, Mapping):
        largest = max((_size(v) for v in values.values()), default=0)
    elif isinstance(values, tuple):
        largest = max((_size(v) for v in values), default=0)
    else:
        largest = _size(values)
    _fits(len(template) + fields * (largest + MAX_WIDTH), "formatting with %")


def _short(number: int) -> str:
    text = str(number) if number.bit_length() < 64 else "a big number"
    return text


class _BoundedFormatter(SandboxedFormatter):
    """``'{:>20}'.format(value)``: each field's width is checked before it is padded, and the
    text written so far is counted."""

    written = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in re.findall(r"\d+", format_spec):
            _width_digits(number)
        _fit(value)
        out = super().format_field(value, format_spec)
        self.written += len(out)
        _fits(self.written, "format()")
        return out


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass


def _check_method(
    owner: str | bytes, name: str, args: tuple[Any, ...], kw: Mapping[str, Any]
) -> None:
    """The text methods that pad or repeat to a size the template gives."""
    given = list(args) + list(kw.values())
    if name in ("center", "ljust", "rjust", "zfill") and given:
        _width(given[0], f"{name}() to a width")
    elif name == "expandtabs":
        tab = given[0] if given else 8
        _width(tab, "expandtabs() to a width")
        if isinstance(tab, int):
            _fits(
                len(owner) + _tabs(owner) * tab,
                "expandtabs()",
            )
    elif name == "replace" and len(given) >= 2:
        old, new = given[0], given[1]
        count = given[2] if len(given) > 2 and isinstance(given[2], int) else -1
        if isinstance(old, (str, bytes)) and isinstance(new, (str, bytes)):
            times = owner.count(old) if old else len(owner) + 1  # type: ignore[arg-type]
            if count >= 0:
                times = min(times, count)
            _fits(len(owner) + times * max(len(new) - len(old), 0), "replace()")
    elif name == "translate" and given and isinstance(given[0], Mapping):
        longest = max((_size(v) for v in given[0].values()), default=1)
        _fits(len(owner) * max(longest, 1), "translate()")


def _tabs(text: str | bytes) -> int:
    return text.count("\t") if isinstance(text, str) else text.count(b"\t")


def _check_join(separator: Any, items: list[Any]) -> None:
    size = sum(_size(item) for item in items)
    _fits(size + _size(separator) * max(len(items) - 1, 0), "join")


# Filters that pad, repeat or indent to a size the template gives; each is given the filter's
# arguments after the value.
def _filter_center(_value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    _width(width, "center to a width")


def _filter_indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    _width(width, "an indent")
    prefix = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    _fits(_size(value) * (1 + max(prefix, 0)), "indent")


def _filter_wordwrap(value: Any, width: Any = 79, *rest: Any, **kw: Any) -> None:
    wrapstring = kw.get("wrapstring", rest[1] if len(rest) > 1 else None) or "\n"
    width = max(width, 1) if isinstance(width, int) else 1
    _fits(_size(value) + (_size(value) // width + 1) * _size(wrapstring), "wordwrap")


def _filter_format(value: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(value, str):
        _check_percent(value, kwargs or args)


def _filter_replace(value: Any, old: Any = "", new: Any = "", count: Any = None, **_: Any) -> None:
    if isinstance(value, str):
        _check_method(value, "replace", (old, new, -1 if count is None else count), {})


def _filter_count(_value: Any, count: Any = 1, *_: Any, **__: Any) -> None:
    _width(count, "a batch or slice size")


def _filter_tojson(value: Any, indent: Any = None, *_: Any, **__: Any) -> None:
    if isinstance(indent, int):
        _width(indent, "an indent")
        _fits(_size(value) * (1 + indent * min(_depth(value), MAX_DEPTH)), "tojson")


def _filter_sum(_value: Any, _attribute: Any = None, start: Any = 0, **kw: Any) -> None:
    start = kw.get("start", start)
    if not isinstance(start, (int, float)):
        raise TemplateTooCostly("sum adds numbers only")


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH or not isinstance(value, (list, tuple, dict)):
        return level
    children = value.values() if isinstance(value, dict) else value
    return max((_depth(child, level + 1) for child in children), default=level + 1)


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _filter_center,
    "indent": _filter_indent,
    "wordwrap": _filter_wordwrap,
    "format": _filter_format,
    "replace": _filter_replace,
    "batch": _filter_count,
    "slice": _filter_count,
    "tojson": _filter_tojson,
    "sum": _filter_sum,
}


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` with its values checked before and its result after (and, for the filters
    that pad or repeat, the size of the result estimated before)."""
    skip = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0
    check = _FILTER_CHECKS.get(name)

    @wraps(original)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        values = args[skip:]
        if name == "join" and values:  # a generator is read once: read it here
            items = list(values[0])
            _check_join(values[1] if len(values) > 1 else kwargs.get("d", ""), items)
            args = (*args[:skip], items, *values[1:])
            values = args[skip:]
        for value in (*values, *kwargs.values()):
            _fit(value)
        if check is not None and values:
            check(*values, **kwargs)
        return _fit(original(*args, **kwargs))

    return bounded


def _range(*args: int) -> range:
    """``range()``: at most :data:`MAX_RANGE_ITEMS` numbers in one render, all ranges together."""
    numbers = safe_range(*args)
    budget = _budget()
    budget.range_items += len(numbers)
    if budget.range_items > MAX_RANGE_ITEMS:
        raise TemplateTooCostly(f"range() over more than {MAX_RANGE_ITEMS} numbers in one message")
    return numbers


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with every loop counted and every text written measured."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        # What each ``{% for %}`` loops over goes through ``environment.loop_items``, which
        # counts the turns (see MAX_STEPS).
        for loop in node.find_all(nodes.For):
            counter = nodes.EnvironmentAttribute("loop_items", lineno=loop.iter.lineno)
            loop.iter = nodes.Call(counter, [loop.iter], [], None, None, lineno=loop.iter.lineno)
        super().visit_Template(node, frame)

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.written({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.written(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # Jinja's, with ``a ~ b``'s parts measured before they are joined.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"{join}(environment.joined((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write(")))")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self.write("environment.built(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self.write("environment.built(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target: ``{% for a, b in ... %}``
            super().visit_Tuple(node, frame)
            return
        self.write("environment.built(")
        super().visit_Tuple(node, frame)
        self.write(")")


class _BoundedTemplate(Template):
    """A template whose every render has a budget of its own (:class:`_Budget`)."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        token = _BUDGET.set(_Budget())
        try:
            return super().render(*args, **kwargs)
        finally:
            _BUDGET.reset(token)


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, plus bounds on what a template may compute (see :data:`MAX_VALUE` and the
    other limits above)."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _BoundedCodeGenerator
    template_class = _BoundedTemplate

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_fit, **options)
        self.globals["range"] = _range
        self.globals.pop("lipsum", None)  # placeholder Latin, of any length: no use in a message
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _fit(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _budget().step()
        given = {k: v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars")}
        for value in (*args, *given.values()):
            _fit(value)
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, bytes)):
            name = getattr(__obj, "__name__", "")
            if name == "join" and args:
                items = list(args[0])
                _check_join(owner, items)
                args = (items, *args[1:])
            else:
                _check_method(owner, name, args, given)
        if isinstance(__obj, LoopContext) and args:  # ``loop(children)`` in a recursive loop
            args = (__self.loop_items(args[0]), *args[1:])
        return _fit(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is None:
            return None
        text = value.__self__
        is_format_map = value.__name__ == "format_map"

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            formatter: _BoundedFormatter = (
                _BoundedEscapeFormatter(self, escape=text.escape)
                if isinstance(text, Markup)
                else _BoundedFormatter(self)
            )
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            formatted: str = type(text)(formatter.vformat(text, args, kwargs))
            return formatted

        return update_wrapper(bounded_format, value)

    # Called from the compiled template (see _BoundedCodeGenerator).

    def loop_items(self, iterable: Any) -> Iterator[Any]:
        budget = _budget()
        for item in iterable:
            budget.step()
            yield item

    def written(self, text: str) -> str:
        budget = _budget()
        budget.output += len(text)
        if budget.output > MAX_OUTPUT:
            raise TemplateTooCostly(
                f"more than {MAX_OUTPUT} characters of text; a message is far shorter"
            )
        return text

    def joined(self, parts: tuple[Any, ...]) -> tuple[Any, ...]:
        _fits(sum(_size(part) for part in parts), "joining with ~")
        return parts

    def built(self, value: Any) -> Any:
        return _fit(value)


@cache
def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return _BoundedEnvironment(autoescape=autoescape, undefined=_Blank, keep_trailing_newline=False)


@lru_cache(maxsize=2048)
def _compiled(source: str, autoescape: bool) -> Template:
    """A template compiled once per text (compiling costs more than rendering)."""
    return _environment(autoescape).from_string(source)


@dataclass(frozen=True)
class TemplateParts:
    """The parts of one template for one audience, channel and language."""

    text: str
    subject: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str = ""
    html: str | None = None


class TemplateProblem(Exception):
    """A template that cannot be used: a syntax error, an unknown variable, a sandbox refusal."""


def check_parts(parts: TemplateParts) -> list[str]:
    """Problems of a template, worded for the person editing it (empty when it is fine)."""
    problems: list[str] = []
    for name in PARTS:
        source = getattr(parts, name)
        if source is None:
            continue
        try:
            tree = _environment(name == "html").parse(source)
        except TemplateError as exc:
            number = getattr(exc, "lineno", None)
            line = f" (line {number})" if number else ""
            problems.append(f"{name}: {exc.message}{line}")
            continue
        private = sorted(
            {node.attr for node in tree.find_all(nodes.Getattr) if node.attr.startswith("_")}
            | {
                str(node.arg.value)
                for node in tree.find_all(nodes.Getitem)
                if isinstance(node.arg, nodes.Const) and str(node.arg.value).startswith("_")
            }
        )
        if private:
            problems.append(f"{name}: not allowed in a template: {', '.join(private)}")
            continue
        unknown = sorted(meta.find_undeclared_variables(tree) - set(VARIABLES) - {"a", "loop"})
        if unknown:
            problems.append(
                f"{name}: unknown variable {', '.join(unknown)}; available: {', '.join(VARIABLES)}"
            )
    if not problems:
        try:
            render(parts, sample_context())
        except TemplateProblem as exc:
            problems.append(str(exc))
    return problems


def render(parts: TemplateParts, context: Mapping[str, Any]) -> Rendered:
    """Render ``parts`` with ``context``; :class:`TemplateProblem` when the template fails or
    asks for more than a message may compute (the limits above), the message then starting with
    the part's name (``text: ...``)."""
    text = _render_part("text", parts.text, context)
    subject = _render_part("subject", parts.subject, context) if parts.subject else ""
    page = _render_part("html", parts.html, context) if parts.html else None
    return Rendered(text=_tidy(text), subject=" ".join(subject.split()), html=page)


def _render_part(name: str, source: str, context: Mapping[str, Any]) -> str:
    try:
        return _compiled(source, name == "html").render(context)
    except TemplateTooCostly as exc:
        raise TemplateProblem(f"{name}: too much for a message: {exc}") from None
    except SecurityError as exc:
        raise TemplateProblem(f"{name}: not allowed in a template: {exc}") from None
    except TemplateError as exc:
        raise TemplateProblem(f"{name}: the template does not render: {exc}") from None
    except RecursionError:
        raise TemplateProblem(
            f"{name}: the template does not render: a macro or a loop calls itself without end"
        ) from None
    except Exception as exc:
        raise TemplateProblem(
            f"{name}: the template does not render: {type(exc).__name__}: {exc}"
        ) from None


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, no blank lines at either end."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)


_URL = re.compile(r"(https?://[^\s<>\"']+)")


def text_to_html(text: str) -> str:
    """An HTML body for an e-mail that has only text: paragraphs, line breaks, links."""
    paragraphs = []
    for block in text.split("\n\n"):
        escaped = html.escape(block)
        linked = _URL.sub(r'<a href="\1">\1</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    body = "\n".join(paragraphs)
    return (
        '<!doctype html><html><body style="font-family: Arial, Helvetica, sans-serif; '
        f'font-size: 15px; line-height: 1.5; color: #1f2933">\n{body}\n</body></html>'
    )


# --- the shipped templates -----------------------------------------------------------------------


_FILES: dict[Path, tuple[float, dict[str, Any]]] = {}


def read_template_file(path: Path) -> dict[str, Any]:
    """A template file's content (audience -> channel -> parts), read again when it changes."""
    modified = path.stat().st_mtime
    cached = _FILES.get(path)
    if cached is None or cached[0] != modified:
        # Read as every YAML file is (bookwise.documents): bounded, no tag that runs code.
        document = parse_document(path.read_text(encoding="utf-8"), str(path))
        data: dict[str, Any] = document.data or {}
        cached = _FILES[path] = (modified, data)
    return cached[1]


def locale_chain(locale: str, fallback: str) -> list[str]:
    """The languages to try, in order: ``fr_CA`` -> ``fr_CA``, ``fr``, the fallback, ``en``."""
    chain = [
        locale,
        locale.split("_", maxsplit=1)[0],
        fallback,
        fallback.split("_", maxsplit=1)[0],
        "en",
    ]
    return list(dict.fromkeys(c for c in chain if c))


def file_template(
    folders: Iterable[Path], name: str, audience: str, channel: str, locale: str, fallback: str
) -> TemplateParts | None:
    """The template ``name`` from the first folder that has it, in the best language available.

    A staff message without a staff version uses the client version.
    """
    for folder in folders:
        base = folder / name
        if not base.is_dir():
            continue
        for candidate in locale_chain(locale, fallback):
            path = base / f"{candidate}.yaml"
            if not path.is_file():
                continue
            content = read_template_file(path)
            for who in (audience, "client") if audience != "client" else ("client",):
                parts = (content.get(who) or {}).get(channel)
                if parts and parts.get("text"):
                    return TemplateParts(
                        text=parts["text"], subject=parts.get("subject"), html=parts.get("html")
                    )
    return None


def sample_context(locale: str = "fr") -> dict[str, Any]:
    """Values of every documented variable, to check and preview templates (dates and times
    written in ``locale``)."""
    from datetime import UTC, datetime, timedelta

    from bookwise.formatting import (
        format_clock,
        format_day,
        format_when,
        human_duration,
        zone_note,
    )

    zone = "Europe/Paris"
    start = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
    end = start + timedelta(minutes=20)
    try:
        when = format_when(start, zone, locale)
    except Exception:  # an unknown locale: the preview still shows something readable
        locale = "en"
        when = format_when(start, zone, locale)
    return {
        "calendar": {
            "name": "Cabinet médical des Lilas",
            "address": "12 rue des Lilas, Paris",
            "phone": "+33 1 42 00 00 00",
            "reply_to": "secretariat@example.org",
        },
        "service": {
            "name": "Consultation",
            "duration": human_duration(end - start, locale),
        },
        "booking": {
            "start": when,
            "end": format_clock(end, zone, locale),
            "date": format_day(start.astimezone(_paris()), locale),
            "time": format_clock(start, zone, locale),
            "timezone": zone,
            "state": "confirmed",
            "location": "12 rue des Lilas, Paris",
            "meeting_url": "",
            "reference": "BW-7K2Q9A",
            "when": f"{when} \u2013 {format_clock(end, zone, locale)} ({zone_note(zone, start)})",
            "approved": False,
            "admin_url": "https://bookings.example.org/admin/bookings/42",
        },
        "previous": {
            "start": format_when(start - timedelta(days=1, hours=3, minutes=30), zone, locale)
        },
        "client": {"name": "Zoé Martin", "email": "zoe@example.org", "phone": "+33612345678"},
        "staff": {"name": "Dr Claire Moreau", "email": "c.moreau@example.org"},
        "manage_url": "https://bookings.example.org/manage/abc",
        "booking_url": "https://bookings.example.org/clinique-des-lilas/patient-visit",
        "reason": "",
        "answers": [{"label": "Motif", "value": "Contrôle annuel"}],
        "consent": {
            "text": "J'accepte que le cabinet traite les informations de santé données ici.",
            "link": "https://bookings.example.org/confidentialite",
            "version": "v3-1f2e3d4c",
            "given_at": format_when(start - timedelta(days=7), zone, locale),
            "withdrawn_at": "",
        },
        "series": {
            "occurrences": [
                format_when(start + timedelta(weeks=week), zone, locale) for week in range(3)
            ],
            "count": 3,
            "cancelled": [],
            "changed": [],
        },
        "time_off": {
            "start": format_when(datetime(2026, 12, 24, 7, tzinfo=UTC), zone, locale),
            "end": format_when(datetime(2027, 1, 1, 18, tzinfo=UTC), zone, locale),
        },
        "invitation": {
            "accept_url": "https://bookings.example.org/staff/accept",
            "decline_url": "https://bookings.example.org/staff/decline",
        },
        "offer": {
            "start": when,
            "expires": format_when(start - timedelta(days=1), zone, locale),
            "accept_url": "https://bookings.example.org/manage/wl-abc",
        },
        "waiting": {
            "wanted": when,
            "hold": "2 hours",
            "page_url": "https://bookings.example.org/manage/wl-abc",
        },
        "source": {
            "name": "outlook.office365.com/owa/calendar/.../calendar.ics",
            "since": format_when(datetime(2026, 12, 2, 8, tzinfo=UTC), zone, locale),
            "problem": "There is no calendar at this address any more (the server answered 404).",
            "admin_url": "https://bookings.example.org/admin/staff/7/",
        },
    }


def _paris() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Paris")
