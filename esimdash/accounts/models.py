import datetime as dt
import zoneinfo

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


def default_time_zone() -> str:
    return settings.DEFAULT_USER_TIME_ZONE


class User(AbstractUser):
    """A person who signs in. Time zone and language shape every page they see."""

    # The primary address, kept in step by django-allauth. Its EmailAddress rows say whether the
    # owner has confirmed it: until then it is not taken as theirs where that grants something (a
    # pool invitation or a line sent to it).
    email = models.EmailField(_("e-mail address"), blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default=default_time_zone, validators=[validate_time_zone]
    )
    language = models.CharField(
        _("language"), max_length=16, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    quiet_hours_start = models.TimeField(
        _("quiet hours start"), default=dt.time(0), help_text=_("Notifications wait until quiet hours end.")
    )
    quiet_hours_end = models.TimeField(_("quiet hours end"), default=dt.time(6))

    @property
    def confirmed_email(self) -> str:
        """The primary e-mail address once its owner has confirmed it, else empty."""
        confirmed = EmailAddress.objects.filter(user=self, primary=True, verified=True)
        return confirmed.values_list("email", flat=True).first() or ""

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def notifications_due_at(self, at: dt.datetime) -> dt.datetime:
        """When a notification raised at `at` may reach this user: at once, or when their quiet
        hours (local time; they may run past midnight) end."""
        start, end = self.quiet_hours_start, self.quiet_hours_end
        local = at.astimezone(self.tz)
        now = local.time()
        quiet = start <= now < end if start <= end else (now >= start or now < end)
        if start == end or not quiet:
            return at
        day = local.date() if now < end else local.date() + dt.timedelta(days=1)
        return dt.datetime.combine(day, end, tzinfo=self.tz)


def has_confirmed_email(email: str) -> Q:
    """The users (a filter) who confirmed this address, case aside: at most one (allauth keeps
    addresses unique)."""
    return Q(emailaddress__email__iexact=email, emailaddress__verified=True)


def email_confirmed_by_another(email: str, *, besides: User | None = None) -> bool:
    """A confirmed address belongs to one account: it resets passwords and receives invitations."""
    others = User.objects.filter(has_confirmed_email(email))
    if besides is not None:
        others = others.exclude(pk=besides.pk)
    return others.exists()


def email_confirm_by_link(*, user: User, email: str) -> None:
    """`user` opened a link that only this address received (a pool invitation): the address, if it
    is among theirs unconfirmed and nobody else has confirmed it, is confirmed."""
    if not email_confirmed_by_another(email, besides=user):
        EmailAddress.objects.filter(user=user, email__iexact=email, verified=False).update(verified=True)


def user_create(
    *, username: str, email: str, password: str | None, email_confirmed: bool, **fields: object
) -> User:
    """An account with `email` as its primary address, confirmed or not (allauth's EmailAddress),
    for the demo and the operator's tools; people sign up through allauth's pages."""
    user = User.objects.create_user(username=username, email=email, password=password, **fields)
    if email:
        EmailAddress.objects.create(user=user, email=email, primary=True, verified=email_confirmed)
    return user
