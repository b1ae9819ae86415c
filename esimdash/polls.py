"""Tags for polled fragments: an entity tag saying what state a fragment was drawn from and until
when it stays fresh, and the empty answer to a poll that still holds a matching one. What goes into
a fragment's state is its app's business (usage/polls.py for the line's card and chart)."""

import datetime as dt

from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import parse_etags, quote_etag


def _signature(state: str, fresh_until: int) -> str:
    return salted_hmac("esimdash.polls", f"{state}|{fresh_until}", algorithm="sha256").hexdigest()[:32]


def poll_tag(state: str, fresh_until: dt.datetime | None = None) -> str:
    """The entity tag a fragment carries: when it stops being fresh (whole seconds, rounded down;
    0 for never) and a signature of that and the state. Signed so that a client cannot stretch
    its own freshness, and so that the tag says nothing of the rows."""
    until = 0 if fresh_until is None else int(fresh_until.timestamp())
    return f"{until}.{_signature(state, until)}"


def _tag_matches(tag: str, state: str, now: dt.datetime) -> bool:
    until_text, _dot, signature = tag.partition(".")
    if not until_text.isdigit():
        return False
    until = int(until_text)
    if until and now.timestamp() >= until:
        return False
    return constant_time_compare(signature, _signature(state, until))


def poll_match(request: HttpRequest, state: str, *, now: dt.datetime) -> str | None:
    """The tag, among those the request carries in If-None-Match, of this state and still fresh."""
    tags = (
        tag.removeprefix("W/").strip('"') for tag in parse_etags(request.headers.get("If-None-Match", ""))
    )
    return next((tag for tag in tags if _tag_matches(tag, state, now)), None)


def unchanged_response(request: HttpRequest, tag: str) -> HttpResponse:
    """No body: 204 to htmx, which then swaps nothing (htmx 2 swaps a 304's empty body, wiping
    the fragment), and 304 Not Modified to any other conditional request."""
    htmx = request.headers.get("HX-Request") == "true"
    response = HttpResponse(status=204 if htmx else 304)
    response["ETag"] = quote_etag(tag)
    return response


def tagged(response: HttpResponse, tag: str) -> HttpResponse:
    response["ETag"] = quote_etag(tag)
    return response
