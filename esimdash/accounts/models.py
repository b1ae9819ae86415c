import datetime as dt
import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


def default_time_zone() -> str:
    return settings.DEFAULT_USER_TIME_ZONE


class User(AbstractUser):
    """A person who signs in. Time zone and language shape every page they see."""

    email = models.EmailField(_("e-mail address"), blank=True)
    # Set when the owner opened the link mailed to the address. Until then the address is not
    # taken as theirs where that grants something: a pool invitation sent to it.
    email_confirmed_at = models.DateTimeField(_("e-mail confirmed at"), null=True, blank=True)
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
        """The e-mail address once its owner has confirmed it, else empty."""
        return self.email if self.email_confirmed_at else ""

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


def email_confirmed_by_another(email: str, *, besides: User | None = None) -> bool:
    """A confirmed address belongs to one account (case aside): it resets passwords and receives
    invitations. An unconfirmed one claims nothing, so typing someone's address at sign-up does not
    keep its owner from signing up with it, and confirming it, later."""
    others = User.objects.filter(email__iexact=email, email_confirmed_at__isnull=False)
    if besides is not None:
        others = others.exclude(pk=besides.pk)
    return others.exists()
