from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from esimdash.accounts.forms import ProfileForm


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        translation.activate(user.language)
        messages.success(request, _("Your settings are saved."))
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


@login_required
@require_http_methods(["GET"])
def session(request: HttpRequest) -> HttpResponse:
    """204 while the session is signed in: the cheapest signed-in page, for clients that keep a
    session alive (and the benchmark's floor)."""
    return HttpResponse(status=204)


def sign_in_name(request: HttpRequest, credentials: dict | None) -> str | None:
    """What django-axes counts failures against: the username or address typed into allauth's
    sign-in form (which passes it to authenticate() as `username` or `email`)."""
    credentials = credentials or {}
    typed = credentials.get("username") or credentials.get("email") or request.POST.get("login")
    return typed.lower() if typed else None


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """django-axes' answer once sign-in is paused. It is the same whether the username exists or
    not, and whichever of the username or the address was locked."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
