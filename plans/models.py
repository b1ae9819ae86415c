import calendar
import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from esimdash.accounts.models import User, default_time_zone, validate_time_zone
from esimdash.validators import validate_name
from plans.validators import validate_e164, validate_eid, validate_iccid


class Carrier(models.Model):
    """A network operator, or an MVNO / travel brand riding on one (`host`)."""

    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(unique=True)
    network_codes = models.JSONField(default=list, blank=True, help_text="MCC-MNC codes, e.g. 440-10")
    host = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="brands")
    inactivity_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The carrier may stop a line with no paid top-up for this many days (povo 2.0: 180).",
    )

    def __str__(self) -> str:
        return self.name


class Plan(models.Model):
    class Kind(models.TextChoices):
        DAY_PASS = "day_pass", _("Day pass")
        TRAVEL_PACK = "travel_pack", _("Travel pack")
        MONTHLY = "monthly", _("Monthly")
        UNLIMITED = "unlimited", _("Unlimited")

    class AtCap(models.TextChoices):
        THROTTLE = "throttle", _("Slow down")
        STOP = "stop", _("Stop data")

    carrier = models.ForeignKey(Carrier, on_delete=models.PROTECT, related_name="plans")
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    allowance_bytes = models.PositiveBigIntegerField(null=True, blank=True, help_text="Empty for unlimited.")
    validity_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Day passes and travel packs: how long the data lasts."
    )
    until_local_midnight = models.BooleanField(
        default=False, help_text="Day passes that end at local midnight rather than after 24 hours."
    )
    daily_fair_use_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    price_jpy = models.PositiveIntegerField()
    at_cap = models.CharField(max_length=8, choices=AtCap.choices, default=AtCap.THROTTLE)
    throttle_kbps = models.PositiveIntegerField(null=True, blank=True)
    tethering_allowed = models.BooleanField(default=True)
    tethering_cap_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    countries = models.JSONField(default=list, help_text="ISO 3166 alpha-2 codes covered")
    shareable = models.BooleanField(default=False)
    member_limit = models.PositiveSmallIntegerField(default=1)
    carry_over = models.BooleanField(default=False, help_text="Unused data lasts to the end of next month.")
    activation_window_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Passes: the eSIM must be activated within this many days of purchase (provisioning).",
    )

    class Meta:
        ordering = ["carrier__name", "price_jpy"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="unlimited", allowance_bytes__isnull=True)
                | (~Q(kind="unlimited") & Q(allowance_bytes__gt=0)),
                name="plan_allowance_matches_kind",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["day_pass", "travel_pack"]) | Q(validity_days__gt=0),
                name="plan_pass_has_validity",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_unlimited(self) -> bool:
        return self.kind == self.Kind.UNLIMITED

    @property
    def has_billing_cycle(self) -> bool:
        return self.kind in (self.Kind.MONTHLY, self.Kind.UNLIMITED)


@dataclass(frozen=True)
class Period:
    starts_at: dt.datetime
    ends_at: dt.datetime


def _cycle_start(year: int, month: int, day: int, tz: dt.tzinfo) -> dt.datetime:
    """Local midnight of the cycle start day; a day past the month's end means its last day."""
    day = min(day, calendar.monthrange(year, month)[1])
    return dt.datetime(year, month, day, tzinfo=tz)


def _shift_month(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + by
    return index // 12, index % 12 + 1


def billing_cycle(at: dt.datetime, tz: zoneinfo.ZoneInfo, cycle_start_day: int) -> Period:
    """The monthly cycle around `at`, from local midnight of the cycle start day to the next."""
    local = at.astimezone(tz)
    start = _cycle_start(local.year, local.month, cycle_start_day, tz)
    if local < start:
        start = _cycle_start(*_shift_month(local.year, local.month, -1), cycle_start_day, tz)
    end = _cycle_start(*_shift_month(start.year, start.month, 1), cycle_start_day, tz)
    return Period(starts_at=start, ends_at=end)


class Line(models.Model):
    """One eSIM profile, owned by one user."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        THROTTLED = "throttled", _("Throttled")
        SUSPENDED = "suspended", _("Suspended")
        EXPIRED = "expired", _("Expired")
        TERMINATED = "terminated", _("Terminated")

    # None until someone claims the line the operator provisioned (`usage.claims`).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="lines"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="lines")
    iccid = models.CharField("ICCID", max_length=20, unique=True, validators=[validate_iccid])
    eid = models.CharField("EID", max_length=32, blank=True, validators=[validate_eid])
    phone_number = models.CharField(_("phone number"), max_length=16, blank=True, validators=[validate_e164])
    nickname = models.CharField(_("nickname"), max_length=64, validators=[validate_name])

    class StatusReason(models.TextChoices):
        NONE = "", _("None")
        CAP = "cap", _("All data used")
        FAIR_USE = "fair_use", _("Daily fair-use limit reached")
        EXPIRY = "expiry", _("Validity ended")
        RULE = "rule", _("An alert rule")
        MANAGER = "manager", _("A manager")
        OPERATOR = "operator", _("The operator")

    # Reasons the ledger sets and lifts by itself; a rule's or a manager's action stays until undone.
    AUTOMATIC_REASONS = frozenset(
        {StatusReason.NONE, StatusReason.CAP, StatusReason.FAIR_USE, StatusReason.EXPIRY}
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=16, choices=StatusReason.choices, default="", blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    cycle_start_day = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(31)]
    )
    time_zone = models.CharField(max_length=64, default=default_time_zone, validators=[validate_time_zone])
    usage_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="End of the newest usage record received for this line."
    )
    evaluation_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Set when usage arrives; cleared when a worker evaluates the line.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Claiming a provisioned line: the SHA-256 of its activation code (the matching ID of its
    # `LPA:1$…$…` string), never the code itself; and, when the operator asks, the one e-mail
    # address that may claim it.
    claim_code_hash = models.CharField(max_length=64, blank=True, editable=False)
    claim_email = models.EmailField(blank=True)
    claim_invitation_only = models.BooleanField(default=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_plan = models.ForeignKey(
        Plan,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The plan the line moves to when its next cycle's allowance is made.",
    )
    activate_by = models.DateTimeField(
        null=True, blank=True, help_text="A pass not activated by then is void (the operator's window)."
    )

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The minute sweep looks for lines whose evaluation is pending: few among many.
            models.Index(
                fields=["evaluation_requested_at"],
                condition=models.Q(evaluation_requested_at__isnull=False),
                name="line_evaluation_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.nickname} ({self.iccid[-4:]})"

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def claimed_owner(self) -> User:
        """The owner of a claimed line. Rules, pools and gifts only ever reach claimed lines (a
        person acts on their own lines), so meeting an unclaimed one there is a bug."""
        if self.owner is None:
            raise ValueError(f"line {self.pk} has not been claimed")
        return self.owner

    def billing_cycle(self, at: dt.datetime) -> Period:
        """The billing cycle around `at`: from the cycle start day to the next, in the line's time zone."""
        return billing_cycle(at, self.tz, self.cycle_start_day)

    def current_period(self, at: dt.datetime) -> Period | None:
        """The period the line's figures are about: its billing cycle, or a pass's validity."""
        if self.plan.has_billing_cycle:
            return self.billing_cycle(at)
        if self.activated_at and self.expires_at:
            return Period(starts_at=self.activated_at, ends_at=self.expires_at)
        return None


class Grant(models.Model):
    """A lot of data on a line. Remaining data is the grants less the usage, consumed in the order
    priority (lower first), then earliest expiry, then oldest."""

    class Source(models.TextChoices):
        PLAN = "plan", _("Plan allowance")
        TOP_UP = "top_up", _("Top-up")
        GIFT = "gift", _("Gift")
        CARRY_OVER = "carry_over", _("Carried over")
        BONUS = "bonus", _("Bonus")
        COMPENSATION = "compensation", _("Compensation")

    DEFAULT_PRIORITY = 100

    # A lot belongs to a line or to a family pool, never both.
    line = models.ForeignKey(Line, null=True, blank=True, on_delete=models.CASCADE, related_name="grants")
    pool = models.ForeignKey("Pool", null=True, blank=True, on_delete=models.CASCADE, related_name="grants")
    source = models.CharField(max_length=16, choices=Source.choices)
    amount_bytes = models.PositiveBigIntegerField()
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    priority = models.SmallIntegerField(default=DEFAULT_PRIORITY)
    note = models.CharField(max_length=200, blank=True)
    gift = models.ForeignKey(
        "Gift", null=True, blank=True, on_delete=models.PROTECT, related_name="grants", editable=False
    )
    gift_hops = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="How many gifts this data has passed through (it may pass two)."
    )
    carried_from = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="carried_to",
        editable=False,
        help_text="A carry-over holds what this lot (the previous cycle's allowance) left.",
    )
    settled_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a carry-over's amount became final. Until then it is what the lot it comes from "
        "left, late usage included, and the amount stored is only its most.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["line", "starts_at", "id"]
        indexes = [models.Index(fields=["line", "expires_at"]), models.Index(fields=["pool", "expires_at"])]
        constraints = [
            # A carry-over may settle at nothing left; every other lot brings data.
            models.CheckConstraint(
                condition=Q(amount_bytes__gt=0) | Q(source="carry_over", carried_from__isnull=False),
                name="grant_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(line__isnull=False, pool__isnull=True) | Q(line__isnull=True, pool__isnull=False),
                name="grant_on_line_or_pool",
            ),
            models.UniqueConstraint(
                fields=["pool", "starts_at"],
                condition=Q(source="plan"),
                name="grant_one_pool_allowance_per_cycle",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=models.F("starts_at")),
                name="grant_expires_after_start",
            ),
            # One allowance per billing cycle, so renewing a cycle twice changes nothing.
            models.UniqueConstraint(
                fields=["line", "starts_at"], condition=Q(source="plan"), name="grant_one_allowance_per_cycle"
            ),
        ]

    def __str__(self) -> str:
        owner = f"line {self.line_id}" if self.line_id else f"pool {self.pool_id}"
        return f"{self.get_source_display()} {self.amount_bytes} B on {owner}"


class Pool(models.Model):
    """A family pool: one allowance (the pool's grants) shared by its members' lines. While a line
    is a member, its usage draws on the pool, and it gets no allowance of its own."""

    name = models.CharField(_("name"), max_length=64, validators=[validate_name])
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="pools")
    cycle_start_day = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(31)]
    )
    time_zone = models.CharField(max_length=64, default=default_time_zone, validators=[validate_time_zone])
    owner_reserve_bytes = models.PositiveBigIntegerField(
        _("kept for the owner"),
        default=0,
        help_text=_("Member caps together cannot eat into this much of each cycle's allowance."),
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def member_limit(self) -> int:
        return self.plan.member_limit if self.plan.member_limit > 1 else DEFAULT_POOL_MEMBER_LIMIT

    def billing_cycle(self, at: dt.datetime) -> Period:
        return billing_cycle(at, self.tz, self.cycle_start_day)


DEFAULT_POOL_MEMBER_LIMIT = 10


class PoolMember(models.Model):
    """A line's membership of a pool, from `joined_at` to `left_at`. Memberships that ended stay:
    the pool's past usage includes what their lines used while members."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        MANAGER = "manager", _("Manager")
        MEMBER = "member", _("Member")
        SUPERVISED = "supervised", _("Supervised member")

    class CapAction(models.TextChoices):
        ALERT = "alert", _("Alert only")
        THROTTLE = "throttle", _("Slow down")
        PAUSE = "pause", _("Pause data")

    MANAGING_ROLES = frozenset({Role.OWNER, Role.MANAGER})

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="members")
    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.MEMBER)
    cap_bytes = models.PositiveBigIntegerField(_("monthly cap"), null=True, blank=True)
    cap_action = models.CharField(
        _("at the cap"), max_length=8, choices=CapAction.choices, default=CapAction.THROTTLE
    )
    paused_until = models.DateTimeField(
        null=True, blank=True, help_text="Paused by a manager until then (the cycle's end) or until resumed."
    )
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pool", "joined_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["line"], condition=Q(left_at__isnull=True), name="line_in_one_pool"
            ),
            models.UniqueConstraint(
                fields=["pool"], condition=Q(left_at__isnull=True, role="owner"), name="pool_has_one_owner"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line} in {self.pool}"

    @property
    def manages(self) -> bool:
        return self.role in self.MANAGING_ROLES


class GiftRequest(models.Model):
    """A supervised pool member asking the pool's managers for more data."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        APPROVED = "approved", _("Approved")
        DECLINED = "declined", _("Declined")

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(PoolMember, on_delete=models.CASCADE, related_name="gift_requests")
    amount_bytes = models.PositiveBigIntegerField()
    message = models.CharField(_("message"), max_length=200, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.UUIDField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["requester", "idempotency_key"], name="gift_request_once"),
            models.CheckConstraint(condition=Q(amount_bytes__gt=0), name="gift_request_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"request for {self.amount_bytes} B by {self.member}"


class Gift(models.Model):
    """Data given from a line (or by a manager, from a pool) to another line: directly, or as a
    single-use code any signed-in user can redeem. The code is not stored: its SHA-256 finds the
    gift, and the sender's page derives it again from a random salt and SECRET_KEY.

    The ledger: `entries` take the data out of the sender's lots when the gift is made; the
    recipient's lot (a Grant with `gift` set) is written when it is received, in the same
    transaction for a direct gift. A code's data is held by the gift until it is redeemed, or
    returned to the sender's lots (entries with positive amounts) when cancelled or expired."""

    class Kind(models.TextChoices):
        DIRECT = "direct", _("Direct")
        CODE = "code", pgettext_lazy("gift kind", "Code")

    class State(models.TextChoices):
        SENT = "sent", _("Sent")
        REDEEMED = "redeemed", _("Redeemed")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gifts_sent")
    from_line = models.ForeignKey(Line, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    from_pool = models.ForeignKey(Pool, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount_bytes = models.PositiveBigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.SENT)
    to_line = models.ForeignKey(
        Line, null=True, blank=True, on_delete=models.PROTECT, related_name="gifts_received"
    )
    code_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    code_salt = models.CharField(
        max_length=32,
        blank=True,
        editable=False,
        help_text="With SECRET_KEY, gives the code back to its sender.",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    request = models.OneToOneField(
        GiftRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="gift"
    )
    idempotency_key = models.UUIDField()
    created_at = models.DateTimeField(default=timezone.now)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When it was cancelled or expired.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["sender", "created_at"]),
            models.Index(fields=["state", "expires_at"]),
        ]
        constraints = [
            # A double click or a retried request makes one gift.
            models.UniqueConstraint(fields=["sender", "idempotency_key"], name="gift_once"),
            models.CheckConstraint(condition=Q(amount_bytes__gt=0), name="gift_amount_positive"),
            models.CheckConstraint(
                condition=Q(from_line__isnull=False, from_pool__isnull=True)
                | Q(from_line__isnull=True, from_pool__isnull=False),
                name="gift_from_line_or_pool",
            ),
            models.CheckConstraint(
                condition=Q(kind="direct", code_hash__isnull=True) | Q(kind="code", code_hash__isnull=False),
                name="gift_code_only_for_codes",
            ),
        ]

    def __str__(self) -> str:
        return f"gift of {self.amount_bytes} B from {self.sender}"


class GiftEntry(models.Model):
    """One movement of a gift's data on one of the sender's lots: negative when the data left
    the lot, positive when it came back (a code cancelled or expired). A lot's data is its amount
    plus its entries."""

    gift = models.ForeignKey(Gift, on_delete=models.PROTECT, related_name="entries")
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="gift_entries")
    delta_bytes = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(delta_bytes=0), name="gift_entry_moves_data")]

    def __str__(self) -> str:
        return f"{self.delta_bytes:+} B on grant {self.grant_id} for gift {self.gift_id}"


class GrantReversal(models.Model):
    """Takes a lot back (an operator's refund or correction): the lot ends at `at`. What was used
    of it stays used; what it still held is gone. The grant itself is never deleted or edited."""

    grant = models.OneToOneField(Grant, on_delete=models.PROTECT, related_name="reversal")
    at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"reversal of grant {self.grant_id}"


class AddOn(models.Model):
    """Data a person can buy for a line of one of `plans` (povo toppings, IIJmio's 1 GB, Airalo's
    top-up packs): a lot of `amount_bytes` lasting `validity_days` from the purchase."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    plans = models.ManyToManyField(Plan, related_name="add_ons")
    amount_bytes = models.PositiveBigIntegerField()
    validity_days = models.PositiveSmallIntegerField()
    price_jpy = models.PositiveIntegerField()
    active = models.BooleanField(default=True, help_text="Inactive add-ons are not offered any more.")

    class Meta:
        ordering = ["price_jpy", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_bytes__gt=0), name="add_on_amount_positive"),
            models.CheckConstraint(condition=Q(validity_days__gt=0), name="add_on_validity_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    """A purchase of an add-on for a line or (auto top-up) a pool. The operator's billing confirms
    or refuses it; confirming writes its lot in the same transaction (`usage.orders`)."""

    class State(models.TextChoices):
        REQUESTED = "requested", _("Waiting for the operator")
        GRANTED = "granted", _("Data added")
        REFUSED = "refused", _("Refused")
        REFUNDED = "refunded", _("Refunded")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orders")
    line = models.ForeignKey(Line, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    pool = models.ForeignKey(Pool, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    add_on = models.ForeignKey(AddOn, on_delete=models.PROTECT, related_name="orders")
    # What was bought, as it was offered then: the catalog may change afterwards.
    amount_bytes = models.PositiveBigIntegerField()
    validity_days = models.PositiveSmallIntegerField()
    price_jpy = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.REQUESTED)
    automatic = models.BooleanField(default=False, help_text="Placed by an auto top-up rule.")
    rule_id = models.BigIntegerField(null=True, blank=True, help_text="The auto top-up rule that placed it.")
    crossing_key = models.CharField(
        max_length=100,
        blank=True,
        help_text="Auto top-up: the threshold crossing it answers. One order per crossing.",
    )
    idempotency_key = models.UUIDField()
    grant = models.OneToOneField(
        Grant, null=True, blank=True, on_delete=models.PROTECT, related_name="order", editable=False
    )
    operator_reference = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=200, blank=True, help_text="Why it was refused or refunded.")
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"]), models.Index(fields=["state", "created_at"])]
        constraints = [
            # A double tap or a retried request buys once.
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="order_once"),
            models.UniqueConstraint(
                fields=["crossing_key"], condition=~Q(crossing_key=""), name="order_one_per_crossing"
            ),
            models.CheckConstraint(
                condition=Q(line__isnull=False, pool__isnull=True) | Q(line__isnull=True, pool__isnull=False),
                name="order_for_line_or_pool",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.pk}: {self.add_on} ({self.state})"
