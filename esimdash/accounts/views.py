import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from esimdash.accounts.forms import (
    EmailChangeForm,
    ProfileForm,
    ReauthenticationForm,
    SignUpForm,
    email_check_unused,
)
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
        _send_the_confirmation_link(user, user.email)
        messages.info(request, _link_sent_message(user.email))
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
    """Sends a link to the new address; the address changes when the link is opened, so a typo
    cannot send the alerts and password resets to a mailbox nobody reads."""
    form = EmailChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        new_email = form.cleaned_data["email"]
        _send_the_confirmation_link(request.user, new_email)
        messages.success(request, _link_sent_message(new_email))
        return redirect("accounts:profile")
    return render(request, "accounts/email_change.html", {"form": form})


# What the link carries, signed with SECRET_KEY: whose address, from what, to what. The old address
# makes a link void once the address has changed since it was sent.
EMAIL_CHANGE_SALT = "esimdash.accounts.email_change"
EMAIL_CHANGE_LINK_MAX_AGE = dt.timedelta(hours=24)


def _link_sent_message(email: str) -> str:
    return _("We sent a link to %(email)s. Open it within 24 hours to confirm the address.") % {
        "email": email
    }


def email_change_token(user: User, new_email: str) -> str:
    """The link's token: at sign-up, and to confirm the address again, the new address is the old."""
    return signing.dumps({"user": user.pk, "old": user.email, "new": new_email}, salt=EMAIL_CHANGE_SALT)


def _send_the_confirmation_link(user: User, new_email: str) -> None:
    token = email_change_token(user, new_email)
    link = settings.SITE_URL + reverse("accounts:email_confirm", args=[token])
    send_mail(
        subject=_("Confirm your esimdash e-mail address"),
        message=_(
            "To make %(email)s the e-mail address of your esimdash account %(username)s, open this link "
            "within 24 hours, in a browser where you are signed in:\n\n%(link)s\n\n"
            "If you did not ask for this, ignore this mail: nothing changes."
        )
        % {"email": new_email, "username": user.username, "link": link},
        from_email=None,
        recipient_list=[new_email],
    )


@login_required
@require_http_methods(["GET", "POST"])
def email_confirm(request: AuthenticatedHttpRequest, token: str) -> HttpResponse:
    """The link sent to the new address: a page with a button (mail scanners that follow links
    change nothing), and the change on POST."""
    change = _email_change_read(request, token)
    user = request.user
    if user.email == change.new and user.email_confirmed_at:  # opened again, or confirmed in another tab
        messages.info(request, _("%(email)s is your e-mail address.") % {"email": user.email})
        return redirect("accounts:profile")
    if problem := _email_change_problem(user, change):
        return render(request, "accounts/email_confirm.html", {"problem": problem}, status=400)
    if request.method == "POST":
        # Conditional, so two confirmations at once change the address, and tell the old one, once.
        as_read = User.objects.filter(
            pk=user.pk, email=change.old, email_confirmed_at=user.email_confirmed_at
        )
        changed = as_read.update(email=change.new, email_confirmed_at=timezone.now())
        # An unconfirmed old address may be a stranger's (a typo at sign-up): it is not told.
        if changed and change.replaces_an_address and user.email_confirmed_at:
            _tell_the_old_address(user, old_email=change.old, new_email=change.new)
        messages.success(request, _("Your e-mail address is confirmed."))
        return redirect("accounts:profile")
    return render(request, "accounts/email_confirm.html", {"new_email": change.new})


@dataclass(frozen=True)
class _EmailChange:
    old: str
    new: str
    expired: bool

    @property
    def replaces_an_address(self) -> bool:
        return bool(self.old) and self.old.lower() != self.new.lower()


def _email_change_read(request: AuthenticatedHttpRequest, token: str) -> _EmailChange:
    """The change a link asks for; 404 for a link that is not ours or is someone else's. Its age
    is checked apart: one's own expired link deserves a page that says so."""
    try:
        signed = signing.loads(token, salt=EMAIL_CHANGE_SALT)
    except signing.BadSignature:
        raise Http404 from None
    if signed["user"] != request.user.pk:
        raise Http404
    try:
        signing.loads(token, salt=EMAIL_CHANGE_SALT, max_age=EMAIL_CHANGE_LINK_MAX_AGE)
        expired = False
    except signing.SignatureExpired:
        expired = True
    return _EmailChange(old=signed["old"], new=signed["new"], expired=expired)


def _email_change_problem(user: User, change: _EmailChange) -> str | None:
    if change.expired:
        return _("This link has expired. Ask for a new one: Settings, Change e-mail address.")
    if user.email != change.old:
        return _("Your address has changed since this link was sent. Use the newest link we sent you.")
    try:
        email_check_unused(change.new, besides=user)
    except ValidationError as error:
        return error.messages[0]
    return None


def _tell_the_old_address(user: User, *, old_email: str, new_email: str) -> None:
    """Someone who took over a signed-in session and knows the password could move the account's
    mail (and so its password resets) elsewhere: the old address hears of it."""
    send_mail(
        subject=_("Your esimdash e-mail address was changed"),
        message=_(
            "The e-mail address of your esimdash account %(username)s was changed to %(email)s. "
            "If this was not you, someone may be signed in to your account: contact support at once."
        )
        % {"username": user.username, "email": new_email},
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
