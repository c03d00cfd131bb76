"""Calendars written back as a calendar data file (``bookwise export calendars``). Pure.

The document is the one ``bookwise load`` reads (docs/calendars.md), in the style of
demo/calendars.yaml: block mappings, short lists in flow style (``tags: [recruiter]``, hours
ranges), the keys in the order the docs show, values quoted only where YAML needs it. Loading
the text gives back the same calendars: ``check_calendar_data`` reads from it the specs it was
made of.

What the format cannot carry, or must not, is left out and named in the header comment:

- the address of a staff member's published calendar (``url``): such an address is itself the
  key to the calendar (Google's "secret address", Outlook's published link, a token in the
  query string), so it is written only when the caller asks (``feed_addresses``; the command
  line's ``--include-feed-addresses``), never in the back office's download;
- an uploaded calendar file (``file``): the format names a file next to the data file, which a
  single document cannot hold;
- a CalDAV calendar is written (its address and the account's name); the account's password
  is never in the database, so never in an export.
"""

from __future__ import annotations

import io
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from bookwise.calendars.data import (
    WEEKDAYS,
    CalendarSpec,
    FeedSpec,
    HoursRange,
    StaffSpec,
    TimeOffSpec,
    format_minute,
)
from bookwise.timezones import local_to_utc


def calendars_yaml(
    calendars: Sequence[CalendarSpec],
    *,
    instance: str,
    exported_at: datetime,
    feed_addresses: bool = False,
) -> str:
    """The calendar data file of ``calendars``, with a header saying when (``exported_at``,
    aware) and from which instance (its address) it was exported, and what was left out."""
    left_out: list[str] = []
    document = CommentedMap()
    document["calendars"] = CommentedSeq(
        _calendar(spec, feed_addresses, left_out) for spec in calendars
    )
    header = [
        f"Calendars exported from {instance} on "
        f"{exported_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC by `bookwise export calendars`.",
        "Load it with `bookwise load FILE` (docs/calendars.md).",
    ]
    if left_out:
        header.append("Left out (see docs/calendars.md, Export):")
        header.extend(f"- {line}" for line in left_out)
    document.yaml_set_start_comment("\n".join(header))
    yaml = YAML(typ="rt")
    yaml.width = 4096  # a long description or reason stays on its line
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.allow_unicode = True
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _flow_list(values: Sequence[object]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _hours(ranges: Sequence[HoursRange]) -> CommentedMap:
    days = CommentedMap()
    for weekday, name in enumerate(WEEKDAYS):
        texts = [
            DoubleQuotedScalarString(
                f"{format_minute(r.start_minute)}-{format_minute(r.end_minute)}"
            )
            for r in sorted(ranges)
            if r.weekday == weekday
        ]
        if texts:
            days[name] = _flow_list(texts)
    if not days:
        days.fa.set_flow_style()  # `hours: {}`: closed every day
    return days


def _calendar(spec: CalendarSpec, feed_addresses: bool, left_out: list[str]) -> CommentedMap:
    data = CommentedMap()
    data["slug"] = spec.slug
    data["name"] = spec.name
    if set(spec.description) == {""}:
        data["description"] = spec.description[""]
    elif spec.description:
        # The calendar's language first, then the others by name: the same text on every
        # database (PostgreSQL's JSONB does not keep the order the keys were written in).
        data["description"] = CommentedMap(
            sorted(spec.description.items(), key=lambda item: (item[0] != spec.locale, item[0]))
        )
    data["timezone"] = spec.timezone
    data["locale"] = spec.locale
    if spec.address is not None:
        data["address"] = spec.address
    if spec.phone is not None:
        data["phone"] = DoubleQuotedScalarString(spec.phone)
    if spec.reply_to is not None:
        data["reply_to"] = spec.reply_to
    if spec.quiet_hours is not None:
        # Quoted: a YAML 1.1 reader takes 21:00 for a number of minutes.
        quiet = CommentedMap(
            (key, DoubleQuotedScalarString(value) if isinstance(value, str) else value)
            for key, value in spec.quiet_hours.to_spec().items()
        )
        quiet.fa.set_flow_style()
        data["quiet_hours"] = quiet
    page = CommentedMap()
    page["published"] = spec.published
    page["indexing"] = spec.search_indexing
    page["sign_in_required"] = spec.sign_in_required
    page["show_business_timezone"] = spec.show_business_timezone
    if spec.embed_origins:
        page["embed_origins"] = _flow_list(list(spec.embed_origins))
    data["booking_page"] = page
    if spec.plugins is not None:
        data["plugins"] = _flow_list(list(spec.plugins))
    data["hours"] = _hours(spec.hours)
    zone = ZoneInfo(spec.timezone)
    if spec.staff:
        data["staff"] = CommentedSeq(
            _staff(spec.slug, member, zone, feed_addresses, left_out) for member in spec.staff
        )
    if spec.services:
        services = CommentedSeq()
        for service in spec.services:
            item = CommentedMap()
            item["workflow"] = service.workflow
            if service.staff:
                item["staff"] = _flow_list(list(service.staff))
            elif service.staff is not None:
                # Everyone listed was removed: the format has no empty list.
                left_out.append(
                    f"{spec.slug}: the staff list of {service.workflow} (everyone on it was "
                    "removed); loaded, the service takes staff by the workflow's tags"
                )
            if not service.active:
                item["active"] = False
            services.append(item)
        data["services"] = services
    return data


def _staff(
    calendar: str,
    member: StaffSpec,
    zone: ZoneInfo,
    feed_addresses: bool,
    left_out: list[str],
) -> CommentedMap:
    data = CommentedMap()
    data["id"] = member.slug
    data["name"] = member.name
    data["email"] = member.email
    if member.phone is not None:
        data["phone"] = DoubleQuotedScalarString(member.phone)
    data["tags"] = _flow_list(list(member.tags))
    if not member.bookable:
        data["bookable"] = False
    if member.hours is not None:
        data["hours"] = _hours(member.hours)
    if member.time_off:
        data["time_off"] = CommentedSeq(
            _time_off(off, zone) for off in sorted(member.time_off, key=_time_off_key)
        )
    feeds = CommentedSeq()
    for feed in member.calendar_feeds:
        written = _feed(feed, feed_addresses)
        if written is not None:
            feeds.append(written)
        elif feed.kind == "url":
            host = urllib.parse.urlsplit(feed.url or "").hostname or "?"
            left_out.append(f"{calendar}/{member.slug}: the address of a calendar on {host}")
        else:
            left_out.append(f"{calendar}/{member.slug}: the uploaded calendar file {feed.file}")
    if feeds:
        data["calendar_feeds"] = feeds
    return data


def _feed(feed: FeedSpec, feed_addresses: bool) -> CommentedMap | None:
    item = CommentedMap()
    if feed.kind == "caldav":
        item["caldav"] = feed.url
        item["account"] = feed.account
        return item
    if feed.kind == "url" and feed_addresses:
        item["url"] = feed.url
        return item
    return None


def _time_off_key(off: TimeOffSpec) -> tuple[datetime, datetime]:
    return (off.start, off.end)


def _time_off(off: TimeOffSpec, zone: ZoneInfo) -> CommentedMap:
    """``{start, end, reason}``: whole days as dates (the end day included) when both ends are
    the calendar's midnights; else local times, with their offset only where the local time
    alone would not give the same instant back (the hour the clocks go back)."""
    item = CommentedMap()
    days = _whole_days(off, zone)
    if days is not None:
        item["start"], item["end"] = days
    else:
        item["start"] = DoubleQuotedScalarString(_moment(off.start, zone))
        item["end"] = DoubleQuotedScalarString(_moment(off.end, zone))
    if off.reason is not None:
        item["reason"] = off.reason
    item.fa.set_flow_style()
    return item


def _whole_days(off: TimeOffSpec, zone: ZoneInfo) -> tuple[date, date] | None:
    first = off.start.astimezone(zone).date()
    after = off.end.astimezone(zone).date()
    if after <= first:
        return None
    start, _ = local_to_utc(datetime.combine(first, time(0)), zone)
    end, _ = local_to_utc(datetime.combine(after, time(0)), zone)
    if (start, end) != (off.start, off.end):
        return None
    return first, after - timedelta(days=1)


def _moment(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    naive = local.replace(tzinfo=None)
    text = naive.isoformat(timespec="seconds" if naive.second else "minutes")
    back, occurs = local_to_utc(naive, zone)
    if back == moment and occurs == "once":
        return text
    offset = local.isoformat(timespec="seconds")[19:]  # "+01:00"
    return text + offset
