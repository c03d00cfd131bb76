"""What a message template may compute is bounded (issue 15, finding 4).

A calendar admin's live preview of ``{{ (7 ** 10000000) > 1 }}`` took 27 s and stalled the web
process; ``{{ 'x'*5000000 }}`` answered 10 MB. Each hostile template here is refused in words,
quickly (the timeout is the bound), by the check the back office runs before saving, by the
rendering the worker runs when sending, and by the live preview over HTTP; a normal template
renders exactly as Jinja's sandbox alone renders it.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bookwise.db import unit_of_work
from bookwise.notifications import rendering
from bookwise.notifications.models import MessageTemplate
from bookwise.notifications.rendering import (
    MAX_INT_BITS,
    MAX_OUTPUT,
    MAX_RANGE_ITEMS,
    MAX_STEPS,
    MAX_VALUE,
    MAX_WIDTH,
    TemplateParts,
    TemplateProblem,
    check_parts,
    read_template_file,
    render,
    sample_context,
)
from bookwise.notifications.services import seed_templates
from bookwise.notifications.templates import SHIPPED_TEMPLATES
from tests.admin.conftest import World, post, world  # noqa: F401 (the fixture)
from tests.conftest import Inbox, Loaded
from tests.test_notifications import book, dispatcher, rows, start_in

# (what it tries, the template, words the refusal must hold)
HOSTILE = [
    ("a huge power", "{{ (7 ** 10000000) > 1 }}", f"at most {MAX_INT_BITS}"),
    ("a huge repetition", "{{ 'x'*5000000 }}", f"at most {MAX_VALUE}"),
    ("a repeated list", "{{ [[1]*1000]*1000 }}", f"at most {MAX_VALUE}"),
    (
        "numbers squared in a loop",
        "{% set ns = namespace(n=3) %}{% for i in 'x'*20 %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}{{ ns.n }}",
        f"more than {MAX_INT_BITS} bits",
    ),
    (
        "a chain of products",
        "{% set n = 999999999999 %}{% set m = n*n*n*n*n*n*n*n %}{% set m = m*m*m*m %}"
        "{% set m = m*m*m*m %}{{ m*m*m*m }}",
        f"more than {MAX_INT_BITS} bits",
    ),
    (
        "nested ranges",
        "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}",
        "range",
    ),
    (
        "nested loops over text",
        "{% for a in 'x'*90000 %}{% for b in 'x'*90000 %}{% endfor %}{% endfor %}",
        f"more than {MAX_STEPS} loop turns",
    ),
    (
        "a macro calling itself twice",
        "{% macro m(n) %}{% if n %}{{ m(n-1) }}{{ m(n-1) }}{% endif %}{% endmacro %}{{ m(40) }}",
        f"more than {MAX_STEPS} loop turns and calls",
    ),
    ("padding with a filter", "{{ 'x'|center(999999999) }}", f"at most {MAX_WIDTH}"),
    ("padding with center()", "{{ 'x'.center(999999999) }}", f"at most {MAX_WIDTH}"),
    ("padding with ljust()", "{{ 'x'.ljust(999999999) }}", f"at most {MAX_WIDTH}"),
    ("padding with rjust()", "{{ 'x'.rjust(999999999, '*') }}", f"at most {MAX_WIDTH}"),
    ("padding with zfill()", "{{ '1'.zfill(999999999) }}", f"at most {MAX_WIDTH}"),
    ("a format width", "{{ '{:>999999999}'.format('x') }}", "a format width of 999999999"),
    ("a nested format width", "{{ '{:>{w}}'.format('x', w=10**8) }}", "a format width"),
    ("a % width", "{{ '%999999999s' % 'x' }}", "a format width of 999999999"),
    ("a |format width", "{{ '%-999999999s'|format('x') }}", "a format width of 999999999"),
    ("a huge indent", "{{ 'x'|indent(99999999) }}", f"at most {MAX_WIDTH}"),
    ("indenting many lines", "{{ ('x\n'*40000)|indent(100) }}", f"at most {MAX_VALUE}"),
    ("wrapping with a long string", "{{ ('x '*40000)|wordwrap(2, true, 'y'*99) }}", "wordwrap"),
    ("replace() amplifying", "{{ ('x'*90000).replace('x', 'yyyyyyyyyy') }}", "replace"),
    ("|replace amplifying", "{{ ('x'*90000)|replace('x', 'yyyyyyyyyy') }}", "replace"),
    ("a long join", "{{ ['x'*50000, 'y'*50000]|join('z'*50000) }}", f"more than {MAX_VALUE}"),
    (
        "~ doubling in a loop",
        "{% set ns = namespace(s='x') %}{% for i in 'x'*40 %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        "joining with ~",
    ),
    (
        "lists of lists (billion laughs)",
        "{% set a = [1]*1000 %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}"
        "{% set c = [b,b,b,b,b,b,b,b,b,b] %}{% set d = [c,c,c,c,c,c,c,c,c,c] %}{{ d }}",
        f"more than {MAX_VALUE}",
    ),
    ("a batch padded", "{{ [1]|batch(999999999, 'x')|list }}", f"at most {MAX_WIDTH}"),
    ("many slices", "{{ [1]|slice(999999999)|list }}", f"at most {MAX_WIDTH}"),
    ("summing lists", "{{ [[1], [2]]|sum(start=[]) }}", "sum adds numbers only"),
    (
        "too much output",
        "{% for i in 'x'*9000 %}{{ 'y'*90 }}{% endfor %}",
        f"more than {MAX_OUTPUT} characters",
    ),
    (
        "too much output captured",
        "{% set s %}{% for i in 'x'*9000 %}{{ 'y'*99 }}{% endfor %}{% endset %}{{ s|length }}",
        f"more than {MAX_OUTPUT} characters",
    ),
]
IDS = [label for label, _, _ in HOSTILE]


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("label", "source", "expected"), HOSTILE, ids=IDS)
def test_check_parts_refuses_a_template_that_computes_too_much(
    label: str, source: str, expected: str
) -> None:
    problems = check_parts(TemplateParts(text=source, subject="Hello"))
    assert len(problems) == 1, label
    assert problems[0].startswith("text: "), problems
    assert expected in problems[0], problems


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("label", "source", "expected"), HOSTILE, ids=IDS)
def test_rendering_refuses_a_template_that_computes_too_much(
    label: str, source: str, expected: str
) -> None:
    # What reaches the worker has been checked when saved; rendering holds on its own all the
    # same (a template written before these bounds, a file edited on disk).
    with pytest.raises(TemplateProblem) as refused:
        render(TemplateParts(text="Hello", subject=source), sample_context())
    message = str(refused.value)
    assert message.startswith("subject: "), message
    if expected != "range":  # range is not a documented variable: check_parts says so
        assert expected in message
    else:
        assert f"range() over more than {MAX_RANGE_ITEMS} numbers" in message


@pytest.mark.timeout(5)
def test_range_has_a_budget_for_the_whole_render() -> None:
    each = MAX_RANGE_ITEMS // 2
    fine = "{{ range(%d)|length }} " % each  # noqa: UP031
    assert render(TemplateParts(text=fine * 2), sample_context()).text == f"{each} {each}"
    with pytest.raises(TemplateProblem, match=r"range\(\) over more than"):
        render(TemplateParts(text=fine * 3), sample_context())


def test_what_a_message_needs_still_works() -> None:
    source = (
        "{{ client.name|upper }} {{ '%05d'|format(42) }} {{ '{:>5}'.format('a') }} {{ 2**10 }} "
        "{{ 'ab'*3 }} {% for a in answers %}{{ loop.index }}/{{ loop.length }} {{ a.label }}"
        "{% else %}none{% endfor %} {{ [1, 2]|join(',') }} {{ 'x'|center(5) }}|"
        "{{ booking.reference ~ '!' }} {{ (reason or 'none')|truncate(20) }} "
        "{% for x in [[1, 2], [3]] recursive %}{% if x is iterable %}{{ loop(x) }}"
        "{% else %}{{ x }}{% endif %}{% endfor %} {{ range(3)|sum }}"
    )
    rendered = render(TemplateParts(text=source), sample_context())
    assert rendered.text == (
        "ZOÉ MARTIN 00042     a 1024 ababab 1/1 Motif 1,2   x  |BW-7K2Q9A! none 123 3"
    )


SHIPPED = sorted(SHIPPED_TEMPLATES.glob("*/*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_templates_render_exactly_as_the_sandbox_alone_renders_them(path: Any) -> None:
    context = sample_context()
    for channels in read_template_file(path).values():
        for parts in channels.values():
            bounded = render(
                TemplateParts(
                    text=parts["text"], subject=parts.get("subject"), html=parts.get("html")
                ),
                context,
            )
            assert bounded.text == rendering._tidy(_unbounded(parts["text"], False, context))
            if parts.get("subject"):
                assert bounded.subject == " ".join(
                    _unbounded(parts["subject"], False, context).split()
                )
            if parts.get("html"):
                assert bounded.html == _unbounded(parts["html"], True, context)


def _unbounded(source: str, autoescape: bool, context: dict[str, Any]) -> str:
    """The template rendered by Jinja's sandbox as it was before these bounds."""
    environment = ImmutableSandboxedEnvironment(
        autoescape=autoescape, undefined=rendering._Blank, keep_trailing_newline=False
    )
    return environment.from_string(source).render(context)


# --- through the back office's live preview, over HTTP ---------------------------------------

PREVIEW = "/admin/templates/confirmed/client/email/fr/preview"
EDIT = "/admin/templates/confirmed/client/email/fr"


OVER_HTTP = {
    "a huge power",
    "a huge repetition",
    "nested ranges",
    "nested loops over text",
    "a chain of products",
    "padding with center()",
    "a format width",
    "a huge indent",
    "too much output",
}


@pytest.mark.timeout(30)  # signing in hashes a password; each preview is bounded by the limits
@pytest.mark.parametrize(
    ("label", "source", "expected"),
    [case for case in HOSTILE if case[0] in OVER_HTTP],
    ids=[label for label in IDS if label in OVER_HTTP],
)
def test_the_live_preview_answers_the_refusal_quickly(
    world: World,  # noqa: F811
    label: str,
    source: str,
    expected: str,
) -> None:
    client = world.login("admin")
    response = post(client, PREVIEW, {"subject": "Bonjour", "text": source})
    assert response.status_code in (200, 400), label
    data = response.get_json()
    assert len(data["problems"]) == 1 and expected in data["problems"][0], data
    assert data["text"] == "" and len(response.data) < 5_000
    # Saving refuses it the same way, beside the text, and stores nothing.
    saved = post(client, EDIT, {"subject": "Bonjour", "text": source, "op": "save"})
    assert saved.status_code == 422
    assert "too much for a message" in saved.get_data(as_text=True)


# --- when a message is sent ----------------------------------------------------------------


@pytest.mark.clock
@pytest.mark.timeout(30)
def test_a_template_that_computes_too_much_fails_cleanly_when_sent(
    mailing: Loaded, inbox: Inbox
) -> None:
    # Written straight into the database (as a template saved before these bounds would be).
    with unit_of_work(mailing.database.sessions) as session:
        seed_templates(session, [SHIPPED_TEMPLATES])
        row = session.scalar(
            sa.select(MessageTemplate).where(
                MessageTemplate.name == "confirmed",
                MessageTemplate.audience == "client",
                MessageTemplate.channel == "email",
                MessageTemplate.locale == "en",
            )
        )
        assert row is not None
        row.body_text, row.is_default = "{{ (7 ** 10000000) > 1 }}{{ 'x'*5000000 }}", False
    book(mailing, start_in())
    dispatcher(mailing).drain()
    (client,) = inbox.to("zoe@example.org")
    assert client["Subject"].startswith("Confirmed:")  # the shipped default
    note = [r for r in rows(mailing) if r.recipient == "zoe@example.org" and r.state == "sent"][-1]
    assert note.last_error is not None
    assert "the edited template failed" in note.last_error
    assert "too much for a message" in note.last_error
