import uuid

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
    """The idempotency key of a stored record: (source, external id), once, whatever its period. Not
    a unique constraint of UsageRecord: that table is partitioned by month on PostgreSQL, so such a
    key would have to hold period_start, and a re-sent record with another period would go unseen."""

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
        indexes = [
            # `records` rides along so that a poll's count of a line's records over the late
            # window reads the index alone (usage/polls.py), not a heap page per day and app.
            # Few daily upserts were HOT anyway (12 %: each day's row is updated hourly).
            models.Index(fields=["line", "bucket_start"], name="daily_usage_line_time", include=["records"])
        ]


class IntegrationToken(models.Model):
    """A credential for an operator's system to call the API. Only a hash of the secret is kept:
    the token is shown once, when it is created."""

    class Scope(models.TextChoices):
        INGEST = "ingest", _("Usage ingestion")
        PROVISION = "provision", _("Provisioning: lines, grants, orders")
        READ = "read", _("Reading lines, plans, ledgers and orders")

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text="What the token may do: ingest, provision, read.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class LineStatusChange(models.Model):
    """One move of a line's status, written by the line-status machine (`usage.status`) and by
    nothing else: what it became, why, and who moved it."""

    class Transition(models.TextChoices):
        LEDGER = "ledger", _("The ledger (data used up, restored or expired)")
        RULE_HOLD = "rule_hold", _("An alert rule slowed or cut off the line")
        RULE_RELEASE = "rule_release", _("A rule's hold was lifted")
        MANAGER_PAUSE = "manager_pause", _("A pool manager paused the line")
        MANAGER_RELEASE = "manager_release", _("A pool manager's pause was lifted")
        RENEW = "renew", _("The pass was renewed")
        OPERATOR_SUSPEND = "operator_suspend", _("The operator suspended the line")
        OPERATOR_RESUME = "operator_resume", _("The operator resumed the line")
        TERMINATE = "terminate", _("The operator terminated the line")

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="status_changes")
    transition = models.CharField(max_length=20, choices=Transition.choices)
    status = models.CharField(max_length=16, choices=Line.Status.choices)
    reason = models.CharField(max_length=16, choices=Line.StatusReason.choices, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule_id = models.BigIntegerField(
        null=True, blank=True, help_text="The alert rule that acted, if one did."
    )
    at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True, help_text="The operator's reason, as it gave it.")

    class Meta:
        ordering = ["line", "at", "id"]
        indexes = [models.Index(fields=["line", "at"])]

    def __str__(self) -> str:
        return f"line {self.line_id} {self.status} ({self.transition}) at {self.at:%Y-%m-%d %H:%M}"


class IdempotencyKey(models.Model):
    """An API write's answer, kept under the `Idempotency-Key` its caller sent: the same key with
    the same request gives the same answer without doing the work again; with another request, 422."""

    token = models.ForeignKey(IntegrationToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    status = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="idempotency_key_once")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.key} ({self.token_id})"


class UsageImport(models.Model):
    """A file of usage records sent to be stored in the background (`POST /api/v1/usage/imports`
    or `import_usage --queue`), and how far its storing got. Each chunk of rows is stored in one
    transaction with this row's progress, so the resume point always matches what is stored."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        NDJSON = "ndjson", "NDJSON"

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.ForeignKey(
        IntegrationToken,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="The token that sent the file; empty for the import_usage command.",
    )
    format = models.CharField(max_length=8, choices=Format.choices)
    file_name = models.CharField(
        max_length=100, help_text="The stored file, in USAGE_IMPORT_DIR, until the import ends."
    )
    file_key = models.CharField(max_length=64, help_text="SHA-256 of the file as it was sent.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    failure = models.CharField(max_length=300, blank=True, help_text="Why the whole file was refused.")
    bytes_total = models.BigIntegerField()
    bytes_done = models.BigIntegerField(default=0)
    rows_read = models.BigIntegerField(default=0)
    new = models.BigIntegerField(default=0)
    duplicate = models.BigIntegerField(default=0)
    invalid = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list, help_text="The first 100 problems: {line, field, message}.")
    resume_line = models.BigIntegerField(default=0, help_text="The file line of the last row stored.")
    resume_offset = models.BigIntegerField(
        default=0, help_text="Bytes of the (uncompressed) file up to the end of that line."
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    progress_at = models.DateTimeField(
        null=True, blank=True, help_text="The last chunk's commit: a running import silent long is resumed."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["token", "file_key"], condition=Q(token__isnull=False), name="usage_import_once"
            ),
            models.UniqueConstraint(
                fields=["file_key"], condition=Q(token__isnull=True), name="usage_import_once_by_command"
            ),
        ]
        indexes = [models.Index(fields=["status", "progress_at"])]

    def __str__(self) -> str:
        return f"{self.format} import {self.pk} ({self.status})"
