from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from esimdash.accounts.requests import AuthenticatedHttpRequest
from plans.selectors import line_get_for_user, lines_for_user
from usage.selectors import line_summaries


def _refresh() -> dict[str, int]:
    return {"refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS}


@login_required
@require_GET
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    summaries = line_summaries(list(lines_for_user(request.user)))
    return render(request, "usage/home.html", {"summaries": summaries, **_refresh()})


@login_required
@require_GET
def line_card(request: AuthenticatedHttpRequest, line_id: int) -> HttpResponse:
    """One line's card, polled by the dashboard to follow new usage without a page reload."""
    line = line_get_for_user(request.user, line_id)
    (summary,) = line_summaries([line])
    return render(request, "usage/home.html#line_card", {"summary": summary, **_refresh()})
