"""Reports: the calendar's dashboard (charts drawn on the server) and the TSV/CSV export of its
bookings (the last 120 days by default, one column per custom question)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from flask import Response, request
from flask_admin import expose
from flask_babel import format_percent, get_locale, lazy_gettext
from markupsafe import Markup
from wtforms import DateField, SelectField
from wtforms import Form as PlainForm
from wtforms.validators import Optional

from bookwise.admin.base import AdminView, options
from bookwise.formatting import format_day
from bookwise.i18n import gettext
from bookwise.reports.charts import bar_chart, column_chart
from bookwise.reports.services import (
    EXPORT_DAYS,
    ReportScope,
    booking_stats,
    export_rows,
    record_export,
    write_table,
)
from bookwise.web import now, plugin_host

MAX_SPAN = 366


class PeriodForm(PlainForm):  # type: ignore[misc]
    start = DateField(lazy_gettext("From"), validators=[Optional()])
    end = DateField(lazy_gettext("To"), validators=[Optional()])
    staff = SelectField(lazy_gettext("Staff member"), validate_choice=False, default="")


class ReportsView(AdminView):
    need = "view"

    def _period(self, default_days: int) -> tuple[PeriodForm, date, date, int | None]:
        calendar = self.calendar
        zone = ZoneInfo(calendar.timezone)
        today = now().astimezone(zone).date()
        form = PeriodForm(request.args)
        form.staff.choices = options(
            [("", gettext("Everyone"))]
            + [(str(m.id), m.name) for m in sorted(calendar.staff, key=lambda m: m.name.casefold())]
        )
        form.validate()
        last = form.end.data if form.end.data and not form.end.errors else today
        first = (
            form.start.data
            if form.start.data and not form.start.errors
            else last - timedelta(days=default_days - 1)
        )
        if first > last:
            first, last = last, first
        if (last - first).days >= MAX_SPAN:
            first = last - timedelta(days=MAX_SPAN - 1)
        if not (first.year >= 1971 and last.year <= 2199):
            first, last = today - timedelta(days=default_days - 1), today
        form.start.data, form.end.data = first, last
        staff = form.staff.data
        member = int(staff) if staff and staff.isdigit() and len(staff) < 12 else None
        if member is not None and member not in {m.id for m in calendar.staff}:
            member = None
        return form, first, last, member

    def _scope(self, first: date, last: date, member: int | None) -> ReportScope:
        calendar = self.calendar
        return ReportScope(
            calendar.id,
            first,
            last,
            calendar.timezone,
            str(get_locale()),
            calendar.default_locale,
            staff_id=member,
        )

    @expose("/")
    def index(self) -> str:
        calendar = self.calendar
        locale = str(get_locale())
        form, first, last, member = self._period(30)
        stats = booking_stats(self.db, self._scope(first, last, member))
        every = max(1, len(stats.days) // 15)
        # The chart functions escape every label themselves (bookwise.reports.charts).
        charts = {
            "days": Markup(  # noqa: S704
                column_chart(
                    [(format_skeleton("Md", d, locale=locale), n) for d, n in stats.days],
                    title=gettext("Bookings per day"),
                    every=every,
                )
            ),
            "services": Markup(  # noqa: S704
                bar_chart(stats.services or [("—", 0)], title=gettext("Bookings per service"))
            ),
            "staff": Markup(  # noqa: S704
                bar_chart(stats.staff or [("—", 0)], title=gettext("Bookings per staff member"))
            ),
        }

        def percent(value: float | None) -> str:
            return "—" if value is None else str(format_percent(value, "#,##0.#%"))

        return self.render(
            "bookwise_admin/reports.html",
            form=form,
            stats=stats,
            charts=charts,
            first=format_day(first, locale),
            last=format_day(last, locale),
            cancellation=percent(stats.cancellation_rate),
            no_show=percent(stats.no_show_rate),
            days=[(format_day(d, locale), n) for d, n in stats.days if n],
            export_days=EXPORT_DAYS,
            sensitive=self.access.allows(calendar.id, "admin"),
        )

    @expose("/export.<kind>")
    def export(self, kind: str) -> Response:
        calendar = self.calendar
        if kind not in ("tsv", "csv"):
            return Response(gettext("Choose tsv or csv."), status=404, mimetype="text/plain")
        _form, first, last, member = self._period(EXPORT_DAYS)
        access = self.access
        include_sensitive = access.allows(calendar.id, "admin")
        scope = self._scope(first, last, member)
        header, rows = export_rows(
            self.db,
            scope,
            include_sensitive=include_sensitive,
            translate=gettext,
            field_types=plugin_host().field_types,
        )
        name = record_export(
            self.db,
            self.actor,
            scope,
            calendar.slug,
            rows=len(rows),
            kind=kind,
            sensitive=include_sensitive,
        )
        self.db.commit()
        body = write_table(header, rows, "\t" if kind == "tsv" else ",")
        return Response(
            body,
            mimetype="text/tab-separated-values" if kind == "tsv" else "text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )
