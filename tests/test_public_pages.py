"""The public pages' wording, formats and time-zone menu (issue 12, part 4), through the Flask
test client. Dates are chosen from the ``now`` fixture, the instant the app's clock starts at."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bookwise.formatting import utc_offset
from bookwise.timezones import canonical_zone, offered_zones
from tests.test_public import form_values

PARIS = ZoneInfo("Europe/Paris")
ORIGIN = {"Origin": "http://localhost"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def web(scenario_app: Any) -> Any:
    return scenario_app.test_client()


def some_day(now: datetime, days: int = 3) -> str:
    """A day in Paris ``days`` after ``now``: the consult service is open 08:00-20:00 daily,
    bookable up to 400 days ahead, so it has free times whatever the instant."""
    return (now.astimezone(PARIS).date() + timedelta(days=days)).isoformat()


def start_at(now: datetime, hour: int, days: int = 3) -> datetime:
    day = now.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)


def book(web: Any, now: datetime, hour: int = 10, **headers: str) -> str:
    """Book a consultation through the pages; the manage token."""
    start = start_at(now, hour).isoformat().replace("+", "%2B")
    url = f"/acme/consult/book?start={start}&tz=Europe/Paris"
    page = web.get(url, headers=headers).get_data(as_text=True)
    answers = form_values(page) | {
        "field_name": "Élodie Martin",
        "field_email": "elodie@example.org",
        "field_topic": "Taxes",
        "consent": "y",
    }
    response = web.post(url.split("?", maxsplit=1)[0], data=answers, headers=ORIGIN | headers)
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    return str(response.headers["Location"]).split("/manage/")[1].split("/")[0]


def cancel(web: Any, token: str) -> None:
    page = web.get(f"/manage/{token}/cancel").get_data(as_text=True)
    response = web.post(f"/manage/{token}/cancel", data=form_values(page), headers=ORIGIN)
    assert response.status_code == 302


def text_of(html: str) -> str:
    """The page's text, tags dropped, spaces as a reader sees them."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))).replace("\u202f", " ")


# --- 1. the manage link on a phone ---------------------------------------------------------------


def test_only_the_manage_link_may_break_anywhere(web: Any) -> None:
    css = web.get("/static/bookwise.css").get_data(as_text=True)
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules = dict(re.findall(r"([^{}]+)\{([^}]*)\}", css))
    paragraph = next(v for k, v in rules.items() if k.strip() == ".manage-link")
    assert "break-all" not in paragraph  # the sentence wraps between words
    link = next(v for k, v in rules.items() if k.strip() == ".manage-link a")
    assert "overflow-wrap: anywhere" in link


# --- 2. the time-zone menu -----------------------------------------------------------------------


def zone_menu(html: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The time-zone menu: (group label, [(value, label)])."""
    select_html = re.search(r'<select id="tz".*?</select>', html, re.S)
    assert select_html is not None
    groups = []
    for label, body in re.findall(
        r'<optgroup label="([^"]*)">(.*?)</optgroup>', select_html[0], re.S
    ):
        options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', body)
        groups.append((unescape(label), [(v, unescape(t)) for v, t in options]))
    return groups


def test_the_zone_menu_offers_current_names_grouped_by_region(web: Any, now: datetime) -> None:
    html = web.get(f"/acme/consult?date={some_day(now)}&tz=America/Toronto").get_data(as_text=True)
    menu = zone_menu(html)
    values = [v for _, options in menu for v, _ in options]
    assert len(values) == len(set(values))  # each zone once
    # Deprecated aliases are gone, their current names stay.
    for alias in ("Africa/Asmera", "Asia/Calcutta", "Europe/Kiev", "US/Eastern", "Etc/GMT+5"):
        assert alias not in values
    for current in ("Africa/Asmara", "Asia/Kolkata", "Europe/Kyiv", "Europe/Oslo", "Etc/UTC"):
        assert current in values
    assert len(values) < 450  # not the ~600 names of the tz database
    # The visitor's zone first, then the calendar's; then regions.
    assert menu[0][1][0][0] == "America/Toronto"
    assert menu[0][1][1][0] == "Europe/Paris"
    assert re.search(r'<option value="America/Toronto" selected>', html)
    labels = [label for label, _ in menu[1:]]
    assert {"Africa", "Americas", "Asia", "Europe", "Pacific Ocean"} <= set(labels)
    europe = dict(next(options for label, options in menu if label == "Europe"))
    # Named by place, with the offset at the app's clock (not the wall clock).
    offset = utc_offset("Europe/Berlin", now)
    assert europe["Europe/Berlin"] == f"Berlin, Germany ({offset})"
    assert offset in ("UTC+01:00", "UTC+02:00")
    asia = dict(next(options for label, options in menu if label == "Asia"))
    assert asia["Asia/Kolkata"] == "Kolkata, India (UTC+05:30)"
    assert asia["Asia/Singapore"] == "Singapore (UTC+08:00)"


def test_the_zone_menu_speaks_the_visitors_language(web: Any, now: datetime) -> None:
    html = web.get(f"/acme/consult?date={some_day(now)}&tz=Asia/Kolkata&lang=fr").get_data(
        as_text=True
    )
    menu = zone_menu(html)
    assert menu[0][0] == "Fuseaux horaires suggérés"
    assert menu[0][1][0] == ("Asia/Kolkata", "Calcutta, Inde (UTC+05:30)")
    labels = [label for label, _ in menu]
    assert "Amériques" in labels and "Océan Pacifique" in labels
    america = dict(next(options for label, options in menu if label == "Amériques"))
    assert america["America/Toronto"].startswith("Toronto, Canada (UTC-0")


def test_a_browser_reporting_an_alias_gets_the_current_name(web: Any, now: datetime) -> None:
    day = some_day(now)
    html = web.get(f"/acme/consult?date={day}&tz=Asia/Calcutta").get_data(as_text=True)
    assert re.search(r'<option value="Asia/Kolkata" selected>', html)
    first = re.search(r'class="slot" href="([^"]*)"', html)
    assert first is not None
    assert parse_qs(urlsplit(unescape(first[1])).query)["tz"] == ["Asia/Kolkata"]
    assert "Asia/Kolkata (UTC+05:30)" in html  # "Times in ..."
    # A zone no offered one stands for is still honoured, and shown first.
    other = web.get(f"/acme/consult?date={day}&tz=Etc/GMT%2B5").get_data(as_text=True)
    assert zone_menu(other)[0][1][0] == ("Etc/GMT+5", "Etc/GMT+5 (UTC-05:00)")


def test_aliases_map_to_the_same_place() -> None:
    assert canonical_zone("Africa/Asmera") == "Africa/Asmara"  # not Nairobi, its clock's twin
    assert canonical_zone("America/Montreal") == "America/Toronto"
    assert canonical_zone("UTC") == "Etc/UTC"
    assert canonical_zone("Not/AZone") is None and canonical_zone(None) is None
    assert all("/" in zone for zone in offered_zones())


# --- 3. regional formats -------------------------------------------------------------------------


def slot_labels(html: str) -> list[str]:
    return [
        unescape(t).replace("\u202f", " ")
        for t in re.findall(r'class="slot" href="[^"]*">([^<]+)<', html)
    ]


def test_a_british_browser_gets_24_hour_times_and_the_day_first(web: Any, now: datetime) -> None:
    day = some_day(now)
    month = datetime.fromisoformat(day).strftime("%B")  # English month name, C locale
    british = web.get(
        f"/acme/consult?date={day}&tz=Europe/Paris",
        headers={"Accept-Language": "en-GB,en;q=0.9"},
    ).get_data(as_text=True)
    assert '<html lang="en">' in british  # the messages are English
    assert slot_labels(british)[0] == "08:00" and slot_labels(british)[-1] == "19:30"
    day_number = int(day[-2:])
    assert re.search(rf"data-day-label>\w+,? {day_number} {month} \d{{4}}<", british)
    american = web.get(
        f"/acme/consult?date={day}&tz=Europe/Paris",
        headers={"Accept-Language": "en-US,en;q=0.9"},
    ).get_data(as_text=True)
    assert slot_labels(american)[0] == "8:00 AM" and slot_labels(american)[-1] == "7:30 PM"
    assert re.search(rf"data-day-label>\w+, {month} {day_number}, \d{{4}}<", american)
    # The script's day switch speaks the same way.
    times = web.get(
        f"/acme/consult/times?date={day}&tz=Europe/Paris",
        headers={"Accept-Language": "en-GB"},
    ).get_json()
    assert times["slots"][0]["label"] == "08:00"


def test_regional_formats_follow_the_language_chosen(web: Any, now: datetime) -> None:
    day = some_day(now)
    canadian = web.get(
        f"/acme/consult?date={day}&tz=Europe/Paris",
        headers={"Accept-Language": "fr-CA,en;q=0.5"},
    ).get_data(as_text=True)
    assert '<html lang="fr">' in canadian
    assert slot_labels(canadian)[0] == "08 h 00"  # Québec writes hours so
    # A visitor who switches to German from a British browser reads German formats.
    german = web.get(
        f"/acme/consult?date={day}&tz=Europe/Paris&lang=de",
        headers={"Accept-Language": "en-GB,de-CH;q=0.5"},
    ).get_data(as_text=True)
    assert slot_labels(german)[0] == "08:00"
    # Garbage in the header is ignored.
    odd = web.get(
        f"/acme/consult?date={day}&tz=Europe/Paris",
        headers={"Accept-Language": "en-ZZZZ, *, x-klingon;q=0.1"},
    )
    assert odd.status_code == 200


def test_the_booking_pages_use_regional_formats(web: Any, now: datetime) -> None:
    token = book(web, now, hour=15, **{"Accept-Language": "en-GB"})
    manage = text_of(
        web.get(f"/manage/{token}", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
    )
    assert "15:00 \u2013 15:30" in manage and "PM" not in manage


# --- 4. wording ----------------------------------------------------------------------------------


def test_zone_names_are_not_in_nested_parentheses(web: Any, now: datetime) -> None:
    start = start_at(now, 10)
    offset = utc_offset("Europe/Paris", start)
    url = f"/acme/consult/book?start={start.isoformat().replace('+', '%2B')}&tz=Europe/Paris"
    form = text_of(web.get(url).get_data(as_text=True))
    assert f"(Europe/Paris, {offset})" in form and "((" not in form.replace(" ", "")
    token = book(web, now)
    manage = text_of(web.get(f"/manage/{token}").get_data(as_text=True))
    assert f"(Europe/Paris, {offset})" in manage
    assert not re.search(r"\([^()]*\([^()]*\)\s*\)", manage)


FRENCH_ELISION = re.compile(r"\b(?:de|que|le|la|du)\s+\{\{\s*\w+\.name\s*\}\}", re.I)


def test_french_messages_never_put_an_article_before_a_name() -> None:
    """ "Le rendez-vous de Élodie": French elides "de" before a vowel, and a name may start
    with anything; the shipped French messages write around it ("pris par Élodie")."""
    templates = sorted((ROOT / "bookwise" / "notifications" / "templates").glob("*/fr.yaml"))
    assert templates
    for path in templates:
        text = path.read_text(encoding="utf-8")
        assert not FRENCH_ELISION.search(text), f"{path}: {FRENCH_ELISION.search(text)}"


def test_a_cancelled_booking_is_not_offered_to_be_changed(web: Any, now: datetime) -> None:
    token = book(web, now)
    assert "Change or cancel" in web.get(f"/manage/{token}").get_data(as_text=True)
    cancel(web, token)
    manage = web.get(f"/manage/{token}").get_data(as_text=True)
    assert "Change or cancel" not in manage
    assert "Book again" in manage and "This booking was cancelled." in manage
    french = web.get(f"/manage/{token}?lang=fr").get_data(as_text=True)
    assert "Modifier ou annuler" not in french and "Réserver à nouveau" in french


def test_the_reschedule_page_of_a_cancelled_booking_says_so(web: Any, now: datetime) -> None:
    token = book(web, now)
    cancel(web, token)
    page = text_of(web.get(f"/manage/{token}/reschedule").get_data(as_text=True))
    assert "This booking was cancelled, so it cannot be moved." in page
    assert "cannot be moved online" not in page
    assert "Now:" not in page


def test_moving_a_booking_from_abroad_names_the_zone(web: Any, now: datetime) -> None:
    """A Toronto client of a Paris business reads "Now: ..." and "Move the booking to ...?"
    with their zone; a Paris client reads the bare time."""
    start = start_at(now, 10).isoformat().replace("+", "%2B")
    url = f"/acme/consult/book?start={start}&tz=America/Toronto"
    answers = form_values(web.get(url).get_data(as_text=True)) | {
        "field_name": "Sam Lee",
        "field_email": "sam@example.org",
        "field_topic": "Taxes",
        "consent": "y",
    }
    done = web.post(url.split("?", maxsplit=1)[0], data=answers, headers=ORIGIN)
    token = str(done.headers["Location"]).split("/manage/")[1].split("/")[0]
    offset = utc_offset("America/Toronto", start_at(now, 10))
    page = text_of(web.get(f"/manage/{token}/reschedule").get_data(as_text=True))
    now_line = re.search(r"Now: ([^.]*?\))", page)
    assert now_line is not None, page
    assert now_line.group(1).endswith(f"(America/Toronto, {offset})")
    later = start_at(now, 15, days=4)
    confirm = text_of(
        web.get(
            f"/manage/{token}/reschedule?tz=America/Toronto&start="
            + later.isoformat().replace("+", "%2B")
        ).get_data(as_text=True)
    )
    assert f"(America/Toronto, {utc_offset('America/Toronto', later)})?" in confirm
    paris = text_of(web.get(f"/manage/{book(web, now, hour=11)}/reschedule").get_data(as_text=True))
    assert "Now:" in paris and "(Europe/Paris" not in paris.split("Now:")[1].split(".")[0]


# --- 4. wording in the back office ---------------------------------------------------------------

PASSWORD = "correct horse battery staple"


def sign_in_as_superadmin(app: Any) -> Any:
    from bookwise.accounts.services import create_user
    from bookwise.db import unit_of_work

    with unit_of_work(app.extensions["bookwise"].database.sessions) as session:
        create_user(session, "root@bw.example", PASSWORD, superadmin=True)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert csrf is not None
    response = client.post(
        "/login", data={"email": "root@bw.example", "password": PASSWORD, "csrf_token": csrf[1]}
    )
    assert response.status_code == 302
    return client


def test_the_consent_language_is_named(scenario_app: Any, web: Any, now: datetime) -> None:
    from bookwise.bookings.models import Booking

    book(web, now)
    with scenario_app.extensions["bookwise"].database.sessions() as session:
        booking_id = session.scalar(select(Booking.id))
    admin = sign_in_as_superadmin(scenario_app)
    page = text_of(admin.get(f"/admin/bookings/{booking_id}").get_data(as_text=True))
    assert ", in English." in page and "in en." not in page
    french = text_of(admin.get(f"/admin/bookings/{booking_id}?lang=fr").get_data(as_text=True))
    assert "langue : anglais." in french


def test_a_service_without_tags_names_its_pool_plainly(scenario: Any, scenario_app: Any) -> None:
    from bookwise.calendars.models import Service
    from tests.conftest import add_workflow_version

    source = (ROOT / "tests/data/scenario/workflows/consult.yaml").read_text(encoding="utf-8")
    untagged = source.replace("staff: {tags: [consultant], assignment: round_robin}", "")
    assert untagged != source
    add_workflow_version(scenario.settings, scenario.database, untagged)
    with scenario.database.sessions() as session:
        service_id = session.scalar(select(Service.id).order_by(Service.id))
    admin = sign_in_as_superadmin(scenario_app)
    page = text_of(admin.get(f"/admin/services/{service_id}/").get_data(as_text=True))
    assert "Every bookable staff member:" in page
    assert "Everyone with the tags —" not in page and "tags :" not in page


# --- the month the picker opens on -------------------------------------------------------------


def test_the_picker_opens_on_next_month_when_this_one_has_no_time_left(
    scenario_app: Any, web: Any
) -> None:
    """On the evening of the 31st, after the last time of the day, the service page opens on
    the next month (with its first free day), not on an empty month; asked for, the month
    still shows, empty."""
    evening = datetime(2026, 12, 31, 21, 0, tzinfo=PARIS)
    scenario_app.extensions["bookwise"].clock = lambda: evening
    page = web.get("/acme/consult?tz=Europe/Paris").get_data(as_text=True)
    assert re.search(r'id="picker-title"[^>]*>January 2027<', page), page[:3000]
    assert 'data-day="2027-01-01"' in page or 'data-day="2027-01-02"' in page
    assert 'rel="prev"' in page  # December is one click away
    asked = web.get("/acme/consult?tz=Europe/Paris&date=2026-12-31").get_data(as_text=True)
    assert re.search(r'id="picker-title"[^>]*>December 2026<', asked)
    assert "No free time this month" in asked
