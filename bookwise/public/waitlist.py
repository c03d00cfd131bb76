"""A waitlist entry's public page (issue 18): the link of the offer's message. It is the
manage link (``/manage/{token}``) of an entry's token: where the client sees their place in
line or the place offered to them, accepts it ("Accept") or leaves the list; without
JavaScript, two small forms. The routes live on the public pages' blueprint (and its
``/embed`` copy), whose helpers they use.
"""

from __future__ import annotations

from typing import Any

from flask import g, redirect, render_template, request

from bookwise.bookings.answers import InvalidAnswers
from bookwise.bookings.messages import describe
from bookwise.bookings.models import Booking, WaitlistEntry
from bookwise.bookings.services import (
    BookingError,
    find_by_manage_token,
    find_service,
    manage_token,
)
from bookwise.bookings.waitlist import (
    WaitlistRequest,
    accept_offer,
    find_entry_by_token,
    is_waitlist_token,
    join_waitlist,
    leave_waitlist,
    position_in_line,
    wanted_words,
)
from bookwise.db import unit_of_work
from bookwise.formatting import format_day, format_when, human_duration
from bookwise.i18n import gettext
from bookwise.metrics import booking_made
from bookwise.public.forms import (
    ASKED_INPUT,
    ActionForm,
    booking_form,
    booking_request,
    conditional_questions,
    mark_answer_problems,
    prefill,
)
from bookwise.public.views import (
    _ask_more_questions,
    _asked_on_page,
    _context,
    _day_param,
    _not_yet_seen,
    _page_settings,
    _parse_start,
    _service_card,
    _zone,
    blueprint,
    formats,
    link,
    locale,
)
from bookwise.web import csrf, db_session, instance, now, plugin_host
from bookwise.workflows.services import current_version, workflow_of


def _entry(token: str) -> WaitlistEntry:
    entry = find_entry_by_token(db_session(), token)
    _page_settings(entry.calendar)
    g.noindex = True
    g.private = True
    return entry


def _entry_details(entry: WaitlistEntry) -> dict[str, Any]:
    calendar = entry.calendar
    workflow = workflow_of(current_version(db_session(), entry.service.workflow.slug))
    zone, fmt = entry.timezone, formats()
    is_day = entry.wanted_from != entry.wanted_until
    wanted = wanted_words(entry, zone, fmt)
    start, expires = entry.offered_start, entry.offer_expires_at
    booking = db_session().get(Booking, entry.booking_id) if entry.booking_id else None
    return {
        "token": entry.manage_token,
        "calendar": calendar,
        "service": workflow.name.get(locale(), calendar.default_locale),
        "service_id": workflow.id,
        "client": entry.client.name,
        "state": entry.state,
        "day": is_day,
        "wanted": wanted,
        "position": position_in_line(db_session(), entry),
        "offer_start": format_when(start, zone, fmt) if start is not None else "",
        "offer_expires": format_when(expires, zone, fmt) if expires is not None else "",
        "booking_link": link("manage", token=manage_token(booking)) if booking else "",
        "hold": human_duration(workflow.waitlist_hold, fmt),
        "live_offer": entry.state == "offered"
        and entry.offer_expires_at is not None
        and entry.offer_expires_at > now(),
    }


def render_entry(token: str, problem: str | None = None, notice: str | None = None) -> Any:
    entry = _entry(token)
    form = ActionForm(meta={"csrf_context": f"waitlist:{entry.manage_token}"})
    page = render_template(
        "public/waitlist.html",
        entry=_entry_details(entry),
        form=form,
        problem=problem,
        notice=notice,
    )
    return page, (409 if problem else 200)


@blueprint.before_request
def _entry_page() -> Any:
    """``/manage/{token}`` of an entry's token is the entry's page (a booking's goes on)."""
    token = (request.view_args or {}).get("token")
    if (
        request.endpoint in ("public.manage", "embed.manage")
        and isinstance(token, str)
        and is_waitlist_token(token)
    ):
        notice = {
            "joined": gettext(
                "You are on the waitlist. If a place becomes free, we will write to you, and "
                "hold it for you for a while."
            ),
            "left": gettext("You have left the waitlist."),
        }.get(request.args.get("done", ""))
        return render_entry(token, notice=notice)
    return None


def _not_an_entry(token: str) -> Any:
    """A booking's link (an entry's action asked of it) goes to the booking's page; a wrong
    token is 404, as everywhere."""
    find_by_manage_token(db_session(), token)
    return redirect(link("manage", token=token))


def _checked_form(entry: WaitlistEntry) -> bool:
    form = ActionForm(request.form, meta={"csrf_context": f"waitlist:{entry.manage_token}"})
    return bool(form.validate())


@blueprint.post("/manage/<token>/accept")
@csrf.exempt  # public forms carry their own signed token (see bookwise.public.forms)
def waitlist_accept(token: str) -> Any:
    """Take the place on offer: the booking's confirmation page, or the entry's page saying
    why not."""
    if not is_waitlist_token(token):
        return _not_an_entry(token)
    entry = _entry(token)
    if not _checked_form(entry):
        return render_entry(token, gettext("This form has expired. Reload the page and try again."))
    db_session().close()
    try:
        with unit_of_work(instance().database.sessions, write=True) as session:
            booking = accept_offer(
                session, find_entry_by_token(session, token), now(), plugins=plugin_host()
            )
            booked = manage_token(booking)
    except BookingError as refused:
        return render_entry(token, describe(refused.code, gettext, refused.told))
    booking_made("waitlist")
    return redirect(link("confirmation", token=booked))


@blueprint.post("/manage/<token>/leave")
@csrf.exempt  # public forms carry their own signed token (see bookwise.public.forms)
def waitlist_leave(token: str) -> Any:
    """Leave the list; the entry's page says so."""
    if not is_waitlist_token(token):
        return _not_an_entry(token)
    entry = _entry(token)
    if not _checked_form(entry):
        return render_entry(token, gettext("This form has expired. Reload the page and try again."))
    db_session().close()
    try:
        with unit_of_work(instance().database.sessions, write=True) as session:
            leave_waitlist(session, find_entry_by_token(session, token), now())
    except BookingError as refused:
        return render_entry(token, describe(refused.code, gettext, refused.told))
    return redirect(link("manage", token=token, done="left"))


@blueprint.route("/<calendar_slug>/<service_slug>/waitlist", methods=["GET", "POST"])
@csrf.exempt  # public forms carry their own signed token (see bookwise.public.forms)
def waitlist_join(calendar_slug: str, service_slug: str) -> Any:
    """Join the waitlist of a full time (``?start=``) or of a day whose every time is taken
    (``?date=``): the client's details and the workflow's questions, checked as a booking's
    (a question asked only if another's answer fits comes on a second step without the
    script); then the entry's page says what happens next. Works without JavaScript."""
    context = _context(calendar_slug, service_slug)
    calendar, workflow = context.calendar, context.workflow
    g.private = True
    posted = request.method == "POST"
    start = _parse_start(request.form.get("start") or request.args.get("start"))
    day = None if start is not None else _day_param()
    if not workflow.waitlist_enabled or (start is None and day is None):
        message = describe("waitlist_closed" if not workflow.waitlist_enabled else "", gettext)
        page = render_template(
            "error.html", code=409, title=gettext("Join the waitlist"), message=message
        )
        return page, 409
    zone = _zone(calendar)
    form = booking_form(workflow, locale(), calendar.default_locale)(
        request.form if posted else None,
        meta={"csrf_context": f"waitlist:{calendar.slug}/{workflow.id}"},
        data={"start": start.isoformat() if start else "", "tz": zone, "staff": ""},
    )
    if not posted:
        prefill(form, workflow, request.args)  # the routing answers a link carries
    problem, more_questions, status = None, [], 200
    if posted:
        if not form.validate():
            problem, status = gettext("This form has expired. Reload the page and try again."), 422
        elif more_questions := _not_yet_seen(workflow, form):
            # Nothing is written: the form comes back with them, every answer kept.
            problem, status = _ask_more_questions(context, form, more_questions, problem, status)
        else:
            wanted = booking_request(form, workflow, start=start or now())
            db_session().close()
            try:
                with unit_of_work(instance().database.sessions, write=True) as session:
                    entry = join_waitlist(
                        session,
                        find_service(session, calendar_slug, service_slug),
                        WaitlistRequest(
                            values=wanted.values,
                            start=start,
                            day=day,
                            consent=wanted.consent,
                            locale=locale(),
                            timezone=zone,
                            sms_opt_in=wanted.sms_opt_in,
                        ),
                        now(),
                        plugins=plugin_host(),
                    )
                    token = entry.manage_token
            except InvalidAnswers as invalid:
                mark_answer_problems(form, invalid)
                problem, status = gettext("Some answers are missing or wrong."), 422
            except BookingError as refused:
                problem, status = describe(refused.code, gettext, refused.told), 409
            else:
                return redirect(link("manage", token=token, done="joined"))
    return render_template(
        "public/waitlist_join.html",
        calendar=calendar,
        service=_service_card(context),
        workflow=workflow,
        form=form,
        tz=zone,
        day=day.isoformat() if day else None,
        day_label=format_day(day, formats()) if day else "",
        when=format_when(start, zone, formats()) if start else "",
        hold=human_duration(workflow.waitlist_hold, formats()),
        conditional=conditional_questions(workflow),
        asked=_asked_on_page(workflow, form),
        more_questions=more_questions,
        asked_input=ASKED_INPUT,
        problem=problem,
    ), status
