import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esimdash.validators import validate_name
from plans.models import AddOn, Line, Pool


class AlertRule(models.Model):
    """A condition on a line that warns its owner, or slows or stops the line, before usage costs
    them. Which threshold fields apply depends on the kind (see `alerts.engine`)."""

    class Kind(models.TextChoices):
        USED_PERCENT = "used_percent", _("Share of the allowance used")
        REMAINING = "remaining", _("Remaining data low")
        WINDOW = "window", _("Usage in a time window")
        TETHERED = "tethered", _("Hotspot usage this cycle")
        NEW_COUNTRY = "new_country", _("Usage in a new country")
        DAYS_ABROAD = "days_abroad", _("Days abroad in a row")
        EXPIRY = "expiry", _("Plan or data expiring soon")
        BACKGROUND_LEAK = "background_leak", _("An app's background usage jumps")
        FIRST_CELLULAR = "first_cellular", _("An app uses mobile data for the first time")
        POOL_LOW = "pool_low", _("The pool's data running low")
        MEMBER_CAP = "member_cap", _("A pool member reaches its cap")

    class Window(models.TextChoices):
        ROLLING_24H = "24h", _("the last 24 hours")
        ROLLING_3D = "3d", _("the last 3 days")
        TODAY = "today", _("today")

    class Action(models.TextChoices):
        NOTIFY = "notify", _("Notify only")
        THROTTLE = "throttle", _("Slow the line down")
        SUSPEND = "suspend", _("Cut off the line's data")
        TOP_UP = "top_up", _("Buy more data")

    POOL_KINDS = frozenset({Kind.POOL_LOW, Kind.MEMBER_CAP})
    POOL_LOW_PERCENT = 10
    UNDO_FOR = dt.timedelta(minutes=10)
    """How long a deleted rule can be brought back; the minute sweep then removes it for good."""
    """A new pool's managers are told when its remaining data falls to this share."""

    # A rule watches a line, or (the pool kinds) a family pool, telling its managers.
    line = models.ForeignKey(Line, null=True, blank=True, on_delete=models.CASCADE, related_name="rules")
    pool = models.ForeignKey(Pool, null=True, blank=True, on_delete=models.CASCADE, related_name="rules")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=100, validators=[validate_name])
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    percent = models.PositiveSmallIntegerField(_("percent"), null=True, blank=True)
    threshold_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    window = models.CharField(_("window"), max_length=8, choices=Window.choices, blank=True)
    days = models.PositiveSmallIntegerField(_("days"), null=True, blank=True)
    hours = models.PositiveIntegerField(_("hours"), null=True, blank=True)
    leak_factor = models.PositiveSmallIntegerField(_("times the usual level"), default=5)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices, default=Action.NOTIFY)
    # Auto top-up (action TOP_UP on a "remaining" or "pool_low" rule): what to buy, and the
    # guardrails that bound what it may spend.
    add_on = models.ForeignKey(
        AddOn, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("buy")
    )
    top_up_max_per_cycle = models.PositiveSmallIntegerField(_("at most this many times a cycle"), default=2)
    top_up_max_yen_per_month = models.PositiveIntegerField(_("at most this much a month (¥)"), default=3000)
    top_up_not_in_quiet_hours = models.BooleanField(_("not during my quiet hours"), default=False)
    notify_email = models.BooleanField(_("e-mail me"), default=True)
    notify_webhook = models.BooleanField(_("call my webhooks"), default=False)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="The last delivery that failed for good.")
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Deleted: never evaluated; its owner may undo for a while."
    )

    class Meta:
        db_table = "usage_alertrule"  # moved from usage, table kept
        ordering = ["line", "created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(line__isnull=False, pool__isnull=True) | Q(line__isnull=True, pool__isnull=False),
                name="alert_rule_on_line_or_pool",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def watched_line(self) -> Line:
        """The line a line rule watches (a rule of the pool kinds watches a pool instead)."""
        if self.line is None:
            raise ValueError(f"rule {self.pk} watches a pool, not a line")
        return self.line


class AlertFiring(models.Model):
    """A rule's threshold crossed in one period. Open until the value falls back or the period
    ends (then the rule is armed again); at most one open firing per rule and period."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="firings")
    period_key = models.CharField(max_length=96)
    value = models.BigIntegerField()
    detail = models.JSONField(default=dict, blank=True)
    fired_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "usage_alertfiring"  # moved from usage, table kept
        ordering = ["-fired_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "period_key"],
                condition=Q(resolved_at__isnull=True),
                name="alert_firing_open_once_per_period",
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} {self.period_key}"


class Notification(models.Model):
    """An entry in a user's notification centre, written in their language when raised. What it is
    about (`subject_kind`, `subject_id`) gives it its link and its actions (`alerts.notices`)."""

    class Subject(models.TextChoices):
        LINE = "line"
        POOL = "pool"
        RULE = "rule"
        GIFT = "gift"
        GIFT_REQUEST = "gift_request"
        POOL_INVITE = "pool_invite"
        ORDER = "order"
        REMINDER = "reminder"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    line = models.ForeignKey(Line, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    firing = models.ForeignKey(AlertFiring, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    visible_at = models.DateTimeField(default=timezone.now, help_text="After the user's quiet hours.")
    read_at = models.DateTimeField(null=True, blank=True)
    # Not a foreign key: the requests and invitations it may be about live in apps above this one.
    subject_kind = models.CharField(max_length=16, choices=Subject.choices, blank=True)
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "usage_notification"  # moved from usage, table kept
        ordering = ["-visible_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at", "visible_at"])]

    def __str__(self) -> str:
        return self.title


class WebhookEndpoint(models.Model):
    """Where a user's alerts are POSTed as JSON signed in the Standard Webhooks format. The secret
    (whsec_ and base64) is shown once, when the endpoint is made or its secret rotated; it stays in
    the database because signing needs it. After a rotation the previous secret signs beside it
    until `previous_secret_until`, so the receiver can be given the new one without missing any."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    # 94 characters for a secret moved from the old form (64 characters, base64'd whole).
    secret = models.CharField(max_length=128, editable=False)
    previous_secret = models.CharField(max_length=128, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "usage_webhookendpoint"  # moved from usage, table kept

    def __str__(self) -> str:
        return self.url

    def signing_secrets(self, *, at: dt.datetime) -> list[str]:
        """The secrets a delivery at `at` is signed with: the current one, and the previous one
        while the rotation's overlap lasts."""
        overlapping = self.previous_secret_until is not None and at < self.previous_secret_until
        return [self.secret, self.previous_secret] if overlapping and self.previous_secret else [self.secret]


class Delivery(models.Model):
    """The outbox: one message to send on one channel. A sender claims it with a conditional
    UPDATE (pending -> sending), so two workers never send it twice; every attempt is recorded."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        WEBHOOK = "webhook", _("Webhook")
        PROVISIONING = "provisioning", _("Operator provisioning")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    channel = models.CharField(max_length=16, choices=Channel.choices)
    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    webhook = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "usage_delivery"  # moved from usage, table kept
        indexes = [models.Index(fields=["state", "due_at"])]

    def __str__(self) -> str:
        return f"{self.channel} #{self.pk} ({self.state})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    succeeded = models.BooleanField()
    error = models.TextField(blank=True)

    class Meta:
        db_table = "usage_deliveryattempt"  # moved from usage, table kept

    def __str__(self) -> str:
        return f"{self.delivery} at {self.at:%Y-%m-%d %H:%M:%S}"


class Reminder(models.Model):
    """A reminder sent to keep a line alive: one per line, reason and deadline, ever (a unique
    index, so two runs of the task never send it twice)."""

    class Reason(models.TextChoices):
        ACTIVATE_WEEK = "activate_week", _("Activate the pass: a week left")
        ACTIVATE_DAY = "activate_day", _("Activate the pass: a day left")
        INACTIVE_MONTH = "inactive_month", _("Top up to keep the line: a month left")
        INACTIVE_WEEK = "inactive_week", _("Top up to keep the line: a week left")
        EXPIRING = "expiring", _("Data expiring unused")

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    deadline = models.DateTimeField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["line", "reason", "deadline"], name="reminder_once"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} for line {self.line_id} by {self.deadline:%Y-%m-%d %H:%M}"
