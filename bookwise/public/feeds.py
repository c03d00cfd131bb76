"""The subscribable calendars' addresses (bookwise.calendars.feeds): what a calendar client polls.

No session, no cookie, no CSRF: the token in the address is the only key. An unknown or stopped
address is a plain 404, the same for both, so an address cannot be probed. The answer carries an
ETag: a client that polls every few minutes gets 304 while nothing changed.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request

from bookwise.calendars.feeds import feed_of
from bookwise.errors import NotFound
from bookwise.web import db_session, instance, now

blueprint = Blueprint("feeds", __name__)


@blueprint.get("/feeds/<token>.ics")
def subscribed(token: str) -> Response:
    session = db_session()
    try:
        feed = feed_of(session, token, now=now(), base_url=instance().settings.base_url)
    except NotFound:
        abort(404)
    session.commit()  # when the address was last used
    response = Response(feed.data, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="bookings.ics"'
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.add_etag()
    response.make_conditional(request)  # 304 when the client has this version
    return response
