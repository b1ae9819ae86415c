from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esimdash.validators import validate_name
from plans.models import Line


class Device(models.Model):
    class Kind(models.TextChoices):
        PHONE = "phone", _("Phone")
        TABLET = "tablet", _("Tablet")
        WATCH = "watch", _("Watch")
        LAPTOP = "laptop", _("Laptop")
        ROUTER = "router", _("Router")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=64, validators=[validate_name])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["owner", "name"]

    def __str__(self) -> str:
        return self.name


class AppCategory(models.TextChoices):
    VIDEO = "video", _("Video")
    SOCIAL = "social", _("Social")
    MAPS = "maps", _("Maps")
    MESSAGING = "messaging", _("Messaging")
    BROWSING = "browsing", _("Browsing")
    CLOUD_BACKUP = "cloud_backup", _("Cloud backup")
    SYSTEM_UPDATE = "system_update", _("System update")
    GAMES = "games", _("Games")
    OTHER = "other", _("Other")


class UsageRecord(models.Model):
    """Bytes one device moved over one line in one period (typically an hour or less)."""

    # No index of its own: the (line, period_start) index serves lookups by line, and every index
    # costs each ingested record a write.
    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="usage_records", db_index=False)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    bytes_up = models.PositiveBigIntegerField()
    bytes_down = models.PositiveBigIntegerField()
    country = models.CharField(max_length=2, help_text="ISO 3166 alpha-2")
    network = models.CharField(max_length=7, help_text="MCC-MNC, e.g. 440-10")
    app_category = models.CharField(max_length=16, choices=AppCategory.choices)
    background = models.BooleanField(default=False)
    tethered = models.BooleanField(default=False)
    source = models.CharField(max_length=32)
    external_id = models.CharField(max_length=128)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["line", "period_start"])]
        constraints = [
            # Idempotency is UsageRecordKey's: on PostgreSQL this table is partitioned by month
            # (migration 0004), and a unique key here would have to hold period_start.
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="usage_period_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"

    @property
    def total_bytes(self) -> int:
        return self.bytes_up + self.bytes_down


class UsageRecordKey(models.Model):
    """The idempotency key of a stored record: its (source, external id), once, whatever its period.

    A record re-sent by its source is recognised by this key and changes nothing. The key cannot be
    a unique constraint of UsageRecord: on PostgreSQL that table is partitioned by month, a unique
    key there must hold period_start, and finding a record re-sent with another period would mean
    a lookup in every month's partition (13 index probes a record with a year of history). Here it
    is one. Written in the same transaction as its record; retention deletes both by period_start."""

    pk = models.CompositePrimaryKey("source", "external_id")
    source = models.CharField(max_length=32)
    external_id = models.CharField(max_length=128)
    period_start = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["period_start"], name="usage_record_key_period")]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class SimulatedLine(models.Model):
    """A demo line the usage simulator feeds, with the habits it plays and how far it has got."""

    line = models.OneToOneField(Line, on_delete=models.CASCADE, related_name="simulation")
    profile = models.CharField(max_length=32)
    simulated_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.line} as {self.profile}"


class UsageRollup(models.Model):
    """Usage summed per bucket of time and per line x device x app x country x background x tethered.

    Written by `usage_ingest` in the same transaction as the records, so a rollup always equals
    the sum of its records. `device_key` is the device id, or 0 for usage of no known device (a
    plain integer: NULLs would not collide in the unique key the upsert relies on)."""

    # No index of its own: the key and the (line, bucket_start) index both start with the line,
    # and each upsert of a bucket writes every index.
    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="+", db_index=False)
    device_key = models.BigIntegerField(default=0)
    app_category = models.CharField(max_length=16, choices=AppCategory.choices)
    country = models.CharField(max_length=2)
    background = models.BooleanField()
    tethered = models.BooleanField()
    bucket_start = models.DateTimeField()
    bytes_up = models.BigIntegerField(default=0)
    bytes_down = models.BigIntegerField(default=0)
    records = models.IntegerField(default=0)

    KEY_FIELDS = ("line", "device_key", "app_category", "country", "background", "tethered", "bucket_start")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.line_id} {self.bucket_start:%Y-%m-%d %H:%M} {self.app_category}"


class HourlyUsage(UsageRollup):
    """Buckets of one UTC hour."""

    class Meta:
        constraints = [models.UniqueConstraint(fields=UsageRollup.KEY_FIELDS, name="hourly_usage_key")]
        indexes = [models.Index(fields=["line", "bucket_start"], name="hourly_usage_line_time")]


class DailyUsage(UsageRollup):
    """Buckets of one day in the line's time zone (starting at its local midnight)."""

    class Meta:
        constraints = [models.UniqueConstraint(fields=UsageRollup.KEY_FIELDS, name="daily_usage_key")]
        indexes = [models.Index(fields=["line", "bucket_start"], name="daily_usage_line_time")]


class IntegrationToken(models.Model):
    """A credential for an operator's system to call the API. Only a hash of the secret is kept:
    the token is shown once, when it is created."""

    class Scope(models.TextChoices):
        INGEST = "ingest", _("Usage ingestion")

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.INGEST)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class AlertRule(models.Model):
    """A condition on a line that warns its owner, or slows or stops the line, before usage costs
    them. Which threshold fields apply depends on the kind (see `usage.alerts`)."""

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

    class Window(models.TextChoices):
        ROLLING_24H = "24h", _("the last 24 hours")
        ROLLING_3D = "3d", _("the last 3 days")
        TODAY = "today", _("today")

    class Action(models.TextChoices):
        NOTIFY = "notify", _("Notify only")
        THROTTLE = "throttle", _("Slow the line down")
        SUSPEND = "suspend", _("Cut off the line's data")

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="rules")
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
    notify_email = models.BooleanField(_("e-mail me"), default=True)
    notify_webhook = models.BooleanField(_("call my webhooks"), default=False)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="The last delivery that failed for good.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["line", "created_at", "id"]

    def __str__(self) -> str:
        return self.name


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
    """An entry in a user's notification centre, written in their language when raised."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    line = models.ForeignKey(Line, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    firing = models.ForeignKey(AlertFiring, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    visible_at = models.DateTimeField(default=timezone.now, help_text="After the user's quiet hours.")
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-visible_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at", "visible_at"])]

    def __str__(self) -> str:
        return self.title


class WebhookEndpoint(models.Model):
    """Where a user's alerts are POSTed as HMAC-signed JSON. The secret is shown once, when the
    endpoint is created; it stays in the database because signing needs it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url


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
        indexes = [models.Index(fields=["state", "due_at"])]

    def __str__(self) -> str:
        return f"{self.channel} #{self.pk} ({self.state})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    succeeded = models.BooleanField()
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.delivery} at {self.at:%Y-%m-%d %H:%M:%S}"
