from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from esimdash.accounts.forms import EmailChangeForm, ProfileForm, ReauthenticationForm, SignUpForm
from esimdash.accounts.models import User
from esimdash.accounts.reauthentication import reauthentication_record, reauthentication_required
from esimdash.accounts.requests import AuthenticatedHttpRequest


def _next_url(request: HttpRequest) -> str:
    """Where to go next, from the form or the query string: only a path on this site is followed."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return ""
    return next_url


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("usage:home")
    initial = {"language": translation.get_language()}
    form = SignUpForm(request.POST or None, initial=initial)
    # Where to go once signed up: an invitation link, say.
    next_url = _next_url(request)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(next_url or "usage:home")
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


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


@login_required
@require_http_methods(["GET", "POST"])
def reauthenticate(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Asks for the password before a change to the account's keys (see reauthentication.py)."""
    next_url = _next_url(request) or "accounts:profile"
    form = ReauthenticationForm(request, request.POST or None)
    if request.method == "POST" and form.is_valid():
        reauthentication_record(request)
        return redirect(next_url)
    return render(request, "accounts/reauthenticate.html", {"form": form, "next": next_url})


@login_required
@reauthentication_required
@require_http_methods(["GET", "POST"])
def email_change(request: AuthenticatedHttpRequest) -> HttpResponse:
    old_email = request.user.email  # read first: validating the form sets the new one on the user
    form = EmailChangeForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        if old_email and old_email.lower() != user.email.lower():
            _tell_the_old_address(user, old_email)
        messages.success(request, _("Your e-mail address is changed."))
        return redirect("accounts:profile")
    return render(request, "accounts/email_change.html", {"form": form})


def _tell_the_old_address(user: User, old_email: str) -> None:
    """Someone who took over a signed-in session and knows the password could move the account's
    mail (and so its password resets) elsewhere: the old address hears of it."""
    send_mail(
        subject=_("Your esimdash e-mail address was changed"),
        message=_(
            "The e-mail address of your esimdash account %(username)s was changed to %(email)s. "
            "If this was not you, someone may be signed in to your account: contact support at once."
        )
        % {"username": user.username, "email": user.email},
        from_email=None,
        recipient_list=[old_email],
    )


@login_required
@reauthentication_required
@require_http_methods(["GET", "POST"])
def password_change(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Replaces Django's password change page: the confirmation just given stands for its "old
    password" field (which nothing counted, so a taken-over session could guess there freely)."""
    form = SetPasswordForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        # This session stays signed in (under a new key); every other session of the user ends.
        update_session_auth_hash(request, form.user)
        return redirect("password_change_done")
    return render(request, "registration/password_change_form.html", {"form": form})


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """django-axes' answer once sign-in is paused. It is the same whether the username exists or
    not, and whichever of the username or the address was locked."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
