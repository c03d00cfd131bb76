"""Seeing a scenario before publishing it: the messages of a sample booking beside the form
preview, and the live preview that follows the editor's unsaved form."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from bookwise.admin.views.workflow_preview import next_monday
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion
from tests.admin.conftest import NOW, World, db, token
from tests.admin.test_workflows_admin import editor, legal_consultation

DRAFT = "/admin/workflows/draft-preview"


def timeline(page: str) -> list[dict[str, str]]:
    """The timeline's messages, in the page's order: when, to whom (channel, language), subject."""
    section = page[page.index('class="message-timeline') :]
    items = []
    for item in re.findall(r"<li[^>]*>(.*?)</li>", section, re.S):
        when = re.search(r"<strong>(.*?)</strong>", item, re.S)
        to = re.search(r'<p class="mb-1 small">(.*?)</p>', item, re.S)
        subject = re.search(r"<summary>(.*?)</summary>", item, re.S)
        items.append(
            {
                "when": html.unescape(when.group(1)) if when else "",
                "to": html.unescape(to.group(1)) if to else "",
                "subject": html.unescape(subject.group(1)) if subject else "",
            }
        )
    return items


def versions(world: World, slug: str) -> int:
    with db(world) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(WorkflowVersion)
                .join(WorkflowRecord)
                .where(WorkflowRecord.slug == slug)
            )
            or 0
        )


def test_the_sample_booking_is_next_monday_at_ten_in_the_calendars_zone() -> None:
    wednesday = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert next_monday(wednesday, "Europe/Paris").isoformat() == "2026-11-30T10:00:00+01:00"
    # On a Monday, the next one; the day counts in the calendar's zone (Sunday 22:30 in UTC is
    # already Monday in Tokyo, still Sunday in Paris).
    monday = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert next_monday(monday, "Europe/Paris").date().isoformat() == "2026-12-07"
    sunday_night = datetime(2026, 11, 29, 22, 30, tzinfo=UTC)
    assert next_monday(sunday_night, "Asia/Tokyo").date().isoformat() == "2026-12-07"
    assert next_monday(sunday_night, "Europe/Paris").date().isoformat() == "2026-11-30"


def test_the_timeline_lists_each_message_at_its_time_in_the_language_asked(world: World) -> None:
    client = world.login("admin")
    page = client.get("/admin/workflows/visit/preview?preview_lang=fr").get_data(as_text=True)
    messages = timeline(page)
    assert "For a sample booking made now, for Monday, November 30, 2026, 10:00" in page
    # The clock stands on Wednesday 25 November, 10:00 in Paris: the confirmations go then, the
    # 24-hour reminder on Sunday 29 at 10:00, the text message two hours before the start.
    confirmation = messages[0]
    assert confirmation["when"] == "Wednesday, November 25, 2026, 10:00\u202fAM · at booking"
    assert confirmation["to"] == "To: The client · E-mail · French"
    assert confirmation["subject"].startswith("Rendez-vous confirmé : Visite, lundi 30 novembre")
    assert messages[1]["to"] == "To: The staff member · E-mail · English"
    assert messages[1]["subject"].startswith("New booking: Visit")
    assert messages[2]["to"] == "To: desk@acme.example · Another system (webhook) · English"
    reminder = messages[3]
    assert reminder["when"] == "Sunday, November 29, 2026, 10:00\u202fAM · 24 hours before"
    assert reminder["subject"].startswith("Rappel : Visite")
    assert messages[4]["when"] == "Monday, November 30, 2026, 8:00\u202fAM · 2 hours before"
    assert messages[4]["to"] == "To: The client · Text message (SMS) · French"
    assert messages[5]["when"].endswith("12:30\u202fPM · 2 hours after the end")
    # Those sent only if something happens come last, without a date.
    assert [m["when"] for m in messages[6:]] == [
        "if it becomes “Cancelled”",
        "if it becomes “Cancelled”",
        "if it is moved to another time",
        "if it is moved to another time",
    ]
    english = client.get("/admin/workflows/visit/preview?preview_lang=en").get_data(as_text=True)
    assert timeline(english)[0]["subject"].startswith("Confirmed: Visit on Monday")


def test_a_message_without_its_template_is_a_warning_not_an_error_page(world: World) -> None:
    client = world.login("super")
    path = "/admin/workflows/visit/yaml"
    text = re.search(
        r"<textarea[^>]*>(.*?)</textarea>", client.get(path).get_data(as_text=True), re.S
    )
    assert text is not None
    original = html.unescape(text.group(1)).lstrip("\n")
    # The consent-withdrawn template has no text message (and a text message no fallback).
    changed = original.replace(
        "  - {on: confirmed, to: desk@acme.example, channel: webhook}",
        "  - {on: confirmed, to: desk@acme.example, channel: webhook}\n"
        "  - {on: confirmed, to: client, channel: sms, template: consent-withdrawn}",
    )
    assert changed != original
    response = client.post(
        path + "?preview_lang=fr",
        data={"csrf_token": token(client), "text": changed, "op": "preview"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[:2000]
    assert "This message cannot be written: no template" in page
    assert versions(world, "visit") == 1


def test_the_live_preview_shows_an_unsaved_change(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/visit/edit")
    assert values["fields-1-id"] == "topic"
    values.update({"fields-1-label_en": "What brings you here?", "slug": "visit"})
    response = client.post(DRAFT, data=values)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert "What brings you here?" in fragment
    assert "<html" not in fragment  # a fragment, for the box beside the editor
    assert 'class="message-timeline' in fragment
    assert "data-preview-lang" in fragment
    french = client.post(DRAFT, data={**values, "preview_lang": "fr"}).get_data(as_text=True)
    assert "Note de santé" in french and "Rappel : Visite" in french
    assert versions(world, "visit") == 1  # nothing saved


def test_the_live_preview_of_a_new_scenario_lists_what_to_fix(world: World) -> None:
    client = world.login("admin")
    values = legal_consultation(editor(client, "/admin/workflows/new"))
    good = client.post(DRAFT, data=values)
    assert good.status_code == 200
    assert "Consultation juridique" not in good.get_data(as_text=True)  # English by default
    assert "Legal consultation" in good.get_data(as_text=True)
    values["id"] = "Legal Consultation!"
    broken = client.post(DRAFT, data=values)
    assert broken.status_code == 200
    fragment = broken.get_data(as_text=True)
    assert "Fix these to see the preview:" in fragment
    assert re.search(r"<li>id: [^<]+</li>", fragment), fragment
    with db(world) as session:
        assert session.scalar(select(func.count()).select_from(WorkflowRecord)) == 5


def test_the_live_preview_needs_the_form_and_the_right(world: World) -> None:
    admin = world.login("admin")
    values = editor(admin, "/admin/workflows/visit/edit")
    values["slug"] = "visit"
    without = {k: v for k, v in values.items() if k != "csrf_token"}
    assert admin.post(DRAFT, data=without).status_code == 400
    viewer = world.login("viewer")
    assert viewer.post(DRAFT, data={**values, "csrf_token": token(viewer)}).status_code == 403
    # The admin of another calendar cannot preview (nor so read) acme's scenario.
    other = world.login("other")
    response = other.post(DRAFT, data={**values, "csrf_token": token(other)})
    assert response.status_code == 403


def test_the_editor_page_offers_the_live_preview_box(world: World) -> None:
    """The partial the editor includes: the box, its script, the scenario it previews."""
    with world.app.test_request_context("/admin/workflows/visit/edit"):
        from flask import render_template

        page = render_template(
            "bookwise_admin/workflows/_live_preview.html", record=type("R", (), {"slug": "visit"})
        )
    assert 'id="live-preview" aria-live="polite" hidden' in page
    assert 'data-url="/admin/workflows/draft-preview"' in page
    assert 'data-slug="visit"' in page
    assert "bookwise_admin_preview.js" in page and "<script>" not in page


def test_the_clock_not_the_wall_decides_the_sample(world: World) -> None:
    world.app.extensions["bookwise"].clock = lambda: NOW.replace(day=1)  # Sunday 1 November
    client = world.login("admin")
    page = client.get("/admin/workflows/visit/preview").get_data(as_text=True)
    assert "for Monday, November 2, 2026, 10:00" in page
