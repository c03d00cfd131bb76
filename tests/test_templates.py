"""Message templates: every shipped one renders; an edited one cannot escape the sandbox."""

from __future__ import annotations

import pytest

from bookwise.notifications.rendering import (
    TemplateParts,
    check_parts,
    read_template_file,
    render,
    sample_context,
    text_to_html,
)
from bookwise.notifications.templates import SHIPPED_TEMPLATES

SHIPPED = sorted(SHIPPED_TEMPLATES.glob("*/*.yaml"))
EVENTS = {
    "requested",
    "confirmed",
    "rescheduled",
    "cancelled",
    "declined",
    "completed",
    "no_show",
    "reminder",
    "follow_up",
}


def test_a_default_template_for_every_event_and_shipped_locale() -> None:
    names = {p.parent.name for p in SHIPPED}
    assert names >= EVENTS
    for name in EVENTS:
        assert {p.stem for p in SHIPPED if p.parent.name == name} == {"en", "fr", "de", "es"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_template_is_clean(path) -> None:
    for audience, channels in read_template_file(path).items():
        assert audience in ("client", "staff")
        for channel, parts in channels.items():
            template = TemplateParts(
                text=parts["text"], subject=parts.get("subject"), html=parts.get("html")
            )
            assert check_parts(template) == [], (audience, channel)
            rendered = render(template, sample_context())
            assert rendered.text and "{{" not in rendered.text
            if channel == "email":
                assert rendered.subject
            if channel == "sms":
                assert len(rendered.text) < 400


ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ calendar.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{% for c in ''.__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ answers.append(1) }}",
    "{{ lipsum.__globals__['os'] }}",
]


@pytest.mark.parametrize("payload", ESCAPES)
def test_sandbox_escapes_are_refused(payload: str) -> None:
    problems = check_parts(TemplateParts(text=payload, subject="Hello"))
    assert problems, payload
    assert any(
        "not allowed" in p or "unknown variable" in p or "does not render" in p for p in problems
    )


def test_syntax_errors_name_the_line() -> None:
    problems = check_parts(TemplateParts(text="Hello\n{% if client.name %}\nno end", subject="x"))
    assert problems and "line" in problems[0]


def test_unknown_variables_are_named() -> None:
    (problem,) = check_parts(TemplateParts(text="{{ clinet.name }}", subject="x"))
    assert "unknown variable clinet" in problem


def test_html_parts_escape_and_text_parts_do_not() -> None:
    context = dict(sample_context(), client={"name": "<b>Zoé</b>"})
    rendered = render(
        TemplateParts(text="{{ client.name }}", html="<p>{{ client.name }}</p>"), context
    )
    assert rendered.text == "<b>Zoé</b>"
    assert rendered.html == "<p>&lt;b&gt;Zoé&lt;/b&gt;</p>"
    page = text_to_html("Hi <script>x</script>\nsee https://example.org/a?b=1&c=2")
    assert "<script>" not in page and '<a href="https://example.org/a?b=1&amp;c=2">' in page
