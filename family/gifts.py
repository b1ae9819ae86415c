"""Gifts: data moved from a line (or by a manager, from a pool) to another line. In one transaction
a gift takes its data out of the sender's lots (negative `GiftEntry` rows) and gives the recipient a
lot (a `Grant` with `gift` set); a code's data waits in the gift, or comes back when it is cancelled
or expires. Locks go user, pools, lines in id order, as evaluations take them (docs/gifts.md,
"Concurrency"). Every refusal raises `GiftError` and changes nothing."""

import base64
import calendar
import datetime as dt
import hashlib
import secrets
import uuid
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from alerts.models import Notification
from alerts.notify import tell_managers, user_notify
from esimdash.accounts.models import User
from esimdash.units import data_size
from family.pools import CapChange, PoolError, pool_caps_set, require_manager
from plans.models import Gift, GiftEntry, GiftRequest, Grant, Line, Pool, PoolMember
from usage.balances import Lot, LotBalance, line_balance, pool_balances
from usage.services import lines_evaluate_after_commit, rows_lock

State = Gift.State
MAX_GIFT_HOPS = 2  # gifted data may be gifted on once


class GiftError(Exception):
    """A gift that is refused; the message says why, for the person who tried."""


@dataclass(frozen=True)
class GiftLimits:
    """The limits every gift keeps to, from settings; the gifts page shows them."""

    unit_bytes: int
    min_bytes: int
    max_bytes: int
    monthly_count: int
    monthly_bytes: int
    sender_keeps_bytes: int
    code_valid_for: dt.timedelta


def gift_limits() -> GiftLimits:
    return GiftLimits(
        unit_bytes=settings.GIFT_UNIT_BYTES,
        min_bytes=settings.GIFT_MIN_BYTES,
        max_bytes=settings.GIFT_MAX_BYTES,
        monthly_count=settings.GIFT_MONTHLY_COUNT,
        monthly_bytes=settings.GIFT_MONTHLY_BYTES,
        sender_keeps_bytes=settings.GIFT_SENDER_KEEPS_BYTES,
        code_valid_for=dt.timedelta(hours=settings.GIFT_CODE_VALID_HOURS),
    )


# --- Codes --------------------------------------------------------------------------------------------
# 16 characters of Crockford's base 32: 80 bits, shown in groups of four. Read back forgivingly.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def gift_code(gift: Gift) -> str:
    """The gift's code, derived from its salt and SECRET_KEY (so the database alone cannot give
    it away), in groups of four: 'K7QM-2XPA-…'."""
    digest = salted_hmac("esimdash.gift-code", gift.code_salt, algorithm="sha256").digest()
    number = int.from_bytes(digest[:10])
    characters = "".join(_CODE_ALPHABET[(number >> (5 * i)) & 31] for i in range(16))
    return "-".join(characters[i : i + 4] for i in range(0, 16, 4))


def code_hash(code: str) -> str:
    normalized = code.strip().upper().translate(_READ_AS)
    return hashlib.sha256(normalized.encode()).hexdigest()


def _new_code_salt() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().lower()[:32]


# --- Recipients ---------------------------------------------------------------------------------------
def masked_name(user: User) -> str:
    """Enough to recognise a friend, not enough to learn a stranger's name: 'W*** M***'."""
    name = user.get_full_name() or user.username
    return " ".join(part[0] + "*" * max(2, len(part) - 1) for part in name.split())


def line_digits(line: Line) -> str:
    """The digits that confirm a recipient, the same on both sides: the sender's confirmation and
    the recipient's own pages show a line by its ICCID's last four (every line has an ICCID; a
    data-only eSIM has no phone number)."""
    return f"ICCID ···{line.iccid[-4:]}"


def masked_line(line: Line) -> str:
    return f"{line.nickname[:1]}*** · {line_digits(line)}"


def recipient_lines(query: str, *, at: dt.datetime) -> list[Line]:
    """The lines a gift can go to, found by phone number (a Japanese number may be written
    domestically: 090-…) or by username; empty when nothing matches."""
    query = query.strip()
    lines = Line.objects.select_related("plan", "owner")
    if query[:1] in "+0123456789" and query:
        try:
            number = phonenumbers.parse(query, "JP")
        except phonenumbers.NumberParseException:
            return []
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        found = lines.filter(phone_number=e164)
    else:
        found = lines.filter(owner__username__iexact=query)
    return _receiving(found, at)


def lines_to_receive(user: User, *, at: dt.datetime) -> list[Line]:
    """The user's lines a gift code can be redeemed on."""
    return _receiving(Line.objects.filter(owner=user).select_related("plan", "owner"), at)


def _receiving(lines, at: dt.datetime) -> list[Line]:
    return [line for line in lines.exclude(plan__kind="unlimited") if _can_receive(line, at)]


def _can_receive(line: Line, at: dt.datetime) -> bool:
    return line.status != Line.Status.EXPIRED and (line.expires_at is None or line.expires_at > at)


# --- Sending ------------------------------------------------------------------------------------------
def _amount_check(amount_bytes: int, limits: GiftLimits) -> None:
    if amount_bytes % limits.unit_bytes:
        raise GiftError(_("Gifts are made in steps of %(unit)s.") % {"unit": data_size(limits.unit_bytes)})
    if not limits.min_bytes <= amount_bytes <= limits.max_bytes:
        raise GiftError(
            _("A gift is between %(min)s and %(max)s.")
            % {"min": data_size(limits.min_bytes), "max": data_size(limits.max_bytes)}
        )


def _month_start(user: User, at: dt.datetime) -> dt.datetime:
    local = at.astimezone(user.tz)
    return dt.datetime(local.year, local.month, 1, tzinfo=user.tz)


def gifts_this_month(sender: User, at: dt.datetime) -> tuple[int, int]:
    """How many gifts the sender made this calendar month (in their time zone), and how much data:
    what the monthly limits count. Gifts cancelled or expired gave their data back; they do not."""
    this_month = Gift.objects.filter(
        sender=sender, created_at__gte=_month_start(sender, at), state__in=[State.SENT, State.REDEEMED]
    ).aggregate(count=Count("pk"), total=Sum("amount_bytes"))
    return this_month["count"], this_month["total"] or 0


@dataclass(frozen=True)
class _Source:
    """Where a gift's data comes from: a line's lots or a pool's, what may be given, and the lines
    whose figures change with it."""

    line: Line | None
    pool: Pool | None
    queue: "tuple[LotBalance, ...]"
    available_bytes: int
    lines: list[int]
    reserved_bytes: int = 0  # the owner's reserve, kept back from a manager who is not the owner


def _line_source(sender: User, line: Line, at: dt.datetime) -> _Source:
    if line.owner_id != sender.pk:
        raise GiftError(_("That line is not yours."))
    if line.plan.is_unlimited:
        raise GiftError(_("An unlimited plan has no data to give."))
    if line.status == Line.Status.EXPIRED or (line.expires_at and line.expires_at <= at):
        raise GiftError(_("This line has expired."))
    if line.status == Line.Status.SUSPENDED:
        raise GiftError(_("This line is cut off; data cannot be given from it."))
    balance = line_balance(line, at=at)
    if balance.member is not None:
        raise GiftError(_("This line uses its family pool's data: the pool's managers give from the pool."))
    return _Source(line, None, balance.queue, balance.remaining_bytes or 0, [line.pk])


def _pool_source(sender: User, pool: Pool, at: dt.datetime) -> _Source:
    try:
        member = require_manager(pool, sender)
    except PoolError as error:
        raise GiftError(str(error)) from error
    balance = pool_balances([pool], at=at)[pool.pk]
    lines = [usage.member.line_id for usage in balance.members]
    available = balance.available_bytes_for(member.role)
    return _Source(None, pool, balance.queue, available, lines, balance.remaining_bytes - available)


@dataclass(frozen=True)
class GiftRoom:
    """How much one source can give now and each limit that bounds it: the figures gift_send
    checks a gift against, and the gift form shows before anything is typed."""

    limits: GiftLimits
    available_bytes: int  # the source's data now (a manager's: without the owner's reserve)
    regiftable_bytes: int  # what lots valid now hold that may still be gifted
    month_count: int
    month_bytes: int
    refused: str = ""  # the source cannot give at all, and why
    reserved_bytes: int = 0  # kept back for the pool's owner, on top of what the sender keeps

    @property
    def after_keep_bytes(self) -> int:
        return max(0, self.available_bytes - self.limits.sender_keeps_bytes)

    @property
    def month_left_bytes(self) -> int:
        return max(0, self.limits.monthly_bytes - self.month_bytes)

    @property
    def bound(self) -> str:
        """The limit that sets `most_bytes`: refused, month_count, keep, regift, month_bytes or max."""
        if self.refused:
            return "refused"
        if self.month_count >= self.limits.monthly_count:
            return "month_count"
        bounds = {
            "keep": self.after_keep_bytes,
            "regift": self.regiftable_bytes,
            "month_bytes": self.month_left_bytes,
            "max": self.limits.max_bytes,
        }
        return min(bounds, key=lambda name: bounds[name])  # the first of equals, in this order

    @property
    def most_bytes(self) -> int:
        """The largest gift this source can make now, in whole units; 0 when none can be made."""
        if self.bound in ("refused", "month_count"):
            return 0
        most = min(self.after_keep_bytes, self.regiftable_bytes, self.month_left_bytes, self.limits.max_bytes)
        most -= most % self.limits.unit_bytes
        return most if most >= self.limits.min_bytes else 0


def _givable(source: _Source, at: dt.datetime) -> list[LotBalance]:
    """The lots a gift may take from, in consumption order: valid now, with data left that was not
    already gifted on once."""
    return [
        entry
        for entry in source.queue
        if entry.lot.valid_at(at) and entry.lot.gift_hops < MAX_GIFT_HOPS and entry.remaining_bytes > 0
    ]


def _room(sender: User, source: _Source, limits: GiftLimits, at: dt.datetime) -> GiftRoom:
    count, total = gifts_this_month(sender, at)
    regiftable = sum(entry.remaining_bytes for entry in _givable(source, at))
    return GiftRoom(
        limits, source.available_bytes, regiftable, count, total, reserved_bytes=source.reserved_bytes
    )


def gift_room(
    *, sender: User, at: dt.datetime, from_line: Line | None = None, from_pool: Pool | None = None
) -> GiftRoom:
    """What the sender can give from the line or pool now, for the form to say before a gift is typed."""
    limits = gift_limits()
    try:
        source = _source(sender, at, from_line=from_line, from_pool=from_pool)
    except GiftError as error:
        count, total = gifts_this_month(sender, at)
        return GiftRoom(limits, 0, 0, count, total, refused=str(error))
    return _room(sender, source, limits, at)


def _room_check(room: GiftRoom, amount_bytes: int) -> None:
    limits = room.limits
    if room.month_count >= limits.monthly_count:
        raise GiftError(
            _("You have made %(count)d gifts this month, the most a month allows.")
            % {"count": room.month_count}
        )
    if amount_bytes > room.month_left_bytes:
        raise GiftError(
            _("That would take your gifts this month past %(limit)s; %(left)s is left to give.")
            % {"limit": data_size(limits.monthly_bytes), "left": data_size(room.month_left_bytes) or "0 B"}
        )
    if amount_bytes > room.after_keep_bytes:
        raise GiftError(
            _("You can give at most %(most)s: %(keep)s stays on the line.")
            % {
                "most": data_size(room.after_keep_bytes) or "0 B",
                "keep": data_size(limits.sender_keeps_bytes),
            }
        )
    if amount_bytes > room.regiftable_bytes:
        raise GiftError(
            _("Only %(givable)s can be given: data that was already gifted on cannot be given again.")
            % {"givable": data_size(room.regiftable_bytes) or "0 B"}
        )


def _take_from_lots(source: _Source, amount_bytes: int, at: dt.datetime) -> list[tuple[Lot, int]]:
    """The lots the gift empties, in consumption order: (lot, bytes) pairs. _room_check has made
    sure they hold enough."""
    taken, left = [], amount_bytes
    for entry in _givable(source, at):
        take = min(left, entry.remaining_bytes)
        taken.append((entry.lot, take))
        left -= take
        if not left:
            break
    return taken


def _source(sender: User, at: dt.datetime, *, from_line: Line | None, from_pool: Pool | None) -> _Source:
    if from_pool is not None:
        return _pool_source(sender, from_pool, at)
    return _line_source(sender, from_line, at)  # type: ignore[arg-type]


def _gift_checked(
    sender: User,
    amount_bytes: int,
    limits: GiftLimits,
    at: dt.datetime,
    *,
    from_line: Line | None,
    from_pool: Pool | None,
    to_line: Line | None,
) -> _Source:
    """Every check of a gift past its amount, in the order its refusals are given; the source to
    take the data from when it passes. Writes nothing."""
    source = _source(sender, at, from_line=from_line, from_pool=from_pool)
    if to_line is not None:
        _recipient_check(to_line, at, from_line=source.line, from_pool=source.pool)
    _room_check(_room(sender, source, limits, at), amount_bytes)
    return source


def gift_check(
    *,
    sender: User,
    amount_bytes: int,
    idempotency_key: uuid.UUID,
    at: dt.datetime,
    from_line: Line | None = None,
    from_pool: Pool | None = None,
    to_line: Line | None = None,
) -> None:
    """Raises the GiftError gift_send would raise now, and writes nothing: the page asks before it
    shows the confirmation. A gift already made with this key passes (gift_send returns it)."""
    if _existing(sender, idempotency_key):
        return
    limits = gift_limits()
    _amount_check(amount_bytes, limits)
    _gift_checked(sender, amount_bytes, limits, at, from_line=from_line, from_pool=from_pool, to_line=to_line)


def _lines_of(pool_id: int | None, line_id: int | None) -> list[int]:
    """The lines whose figures change with the pool's data (all its lines) or the line's."""
    if pool_id is not None:
        return _pool_lines(pool_id)
    return [line_id] if line_id is not None else []


def _existing(sender: User, key: uuid.UUID) -> Gift | None:
    return Gift.objects.filter(sender=sender, idempotency_key=key).first()


def gift_send(
    *,
    sender: User,
    amount_bytes: int,
    idempotency_key: uuid.UUID,
    at: dt.datetime,
    from_line: Line | None = None,
    from_pool: Pool | None = None,
    to_line: Line | None = None,
    request: GiftRequest | None = None,
) -> Gift:
    """Gives `amount_bytes` from the sender's line (or a pool they manage) to `to_line`, or, with
    no `to_line`, as a code. The same idempotency key again returns the first gift and changes
    nothing."""
    limits = gift_limits()
    _amount_check(amount_bytes, limits)
    try:
        with transaction.atomic():
            rows_lock(User, [sender.pk])
            if existing := _existing(sender, idempotency_key):
                return existing
            to_pool_id = _current_pool_id(to_line) if to_line is not None else None
            from_pool_id = from_pool.pk if from_pool is not None else None
            rows_lock(Pool, [pk for pk in (from_pool_id, to_pool_id) if pk])
            if from_pool is not None:
                from_pool = Pool.objects.get(pk=from_pool.pk)  # its reserve as it is now
            rows_lock(
                Line,
                [
                    *_lines_of(from_pool_id, from_line.pk if from_line else None),
                    *_lines_of(to_pool_id, to_line.pk if to_line else None),
                ],
            )
            if to_line is not None:  # checked as it is now, locked, not as the caller read it
                to_line = Line.objects.select_related("plan").get(pk=to_line.pk)
            if from_line is not None:
                from_line = Line.objects.select_related("plan").get(pk=from_line.pk)
            source = _gift_checked(
                sender, amount_bytes, limits, at, from_line=from_line, from_pool=from_pool, to_line=to_line
            )
            taken = _take_from_lots(source, amount_bytes, at)
            gift = Gift.objects.create(
                sender=sender,
                from_line=source.line,
                from_pool=source.pool,
                kind=Gift.Kind.CODE if to_line is None else Gift.Kind.DIRECT,
                amount_bytes=amount_bytes,
                idempotency_key=idempotency_key,
                request=request,
                created_at=at,
                **(_code_fields(limits, at) if to_line is None else {}),
            )
            GiftEntry.objects.bulk_create(
                GiftEntry(gift=gift, grant_id=lot.grant_id, delta_bytes=-taken_bytes, created_at=at)
                for lot, taken_bytes in taken
            )
            changed = list(source.lines)
            if to_line is not None:
                changed += _receive(gift, to_line, [lot for lot, _bytes in taken], at)
            lines_evaluate_after_commit(changed)
    except IntegrityError:
        # The same key committed by a request that ran beside this one: that gift stands.
        if existing := _existing(sender, idempotency_key):
            return existing
        raise
    if to_line is not None:
        _tell_recipient(gift, at)
    return gift


def _code_fields(limits: GiftLimits, at: dt.datetime) -> dict[str, object]:
    salt = _new_code_salt()
    gift = Gift(code_salt=salt)
    return {
        "code_salt": salt,
        "code_hash": code_hash(gift_code(gift)),
        "expires_at": at + limits.code_valid_for,
    }


def _recipient_check(
    to_line: Line, at: dt.datetime, *, from_line: Line | None, from_pool: Pool | None
) -> None:
    if from_line is not None and to_line.pk == from_line.pk:
        raise GiftError(_("A line cannot give data to itself."))
    if to_line.plan.is_unlimited:
        raise GiftError(_("That line is on an unlimited plan: it needs no data."))
    if not _can_receive(to_line, at):
        raise GiftError(_("That line has expired and cannot receive data."))
    if from_pool is not None and _current_pool_id(to_line) == from_pool.pk:
        raise GiftError(_("That line already uses this pool's data."))


def _current_pool_id(line: Line) -> int | None:
    return (
        PoolMember.objects.filter(line=line, left_at__isnull=True).values_list("pool_id", flat=True).first()
    )


def _end_of_next_month(at: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    local = at.astimezone(tz)
    year, month = divmod(local.year * 12 + local.month - 1 + 2, 12)
    return dt.datetime(year, month + 1, 1, tzinfo=tz)


def _month_after(moment: dt.datetime) -> dt.datetime:
    year, month = divmod(moment.year * 12 + moment.month, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _receive(
    gift: Gift, to_line: Line, sources: Sequence[Grant] | Sequence["Lot"], at: dt.datetime
) -> list[int]:
    """The recipient's lot: valid to the end of next month in the line's time zone, and never
    more than a month past the expiry of the lots it came from. A line in a family pool draws on
    the pool, so its gift goes into the pool. Returns the lines whose figures change."""
    expiries = [_month_after(lot.expires_at) for lot in sources if lot.expires_at]
    expires_at = min([_end_of_next_month(at, to_line.tz), *expiries])
    pool_id = _current_pool_id(to_line)
    Grant.objects.create(
        line=None if pool_id else to_line,
        pool_id=pool_id,
        source=Grant.Source.GIFT,
        amount_bytes=gift.amount_bytes,
        starts_at=at,
        expires_at=expires_at,
        gift=gift,
        gift_hops=max(lot.gift_hops for lot in sources) + 1,
        created_at=at,
    )
    Gift.objects.filter(pk=gift.pk).update(to_line=to_line, state=State.REDEEMED, redeemed_at=at)
    gift.to_line, gift.state, gift.redeemed_at = to_line, State.REDEEMED, at
    if pool_id:
        return list(
            PoolMember.objects.filter(pool_id=pool_id, left_at__isnull=True).values_list("line_id", flat=True)
        )
    return [to_line.pk]


# --- Codes: redeem, cancel, expire --------------------------------------------------------------------
def gift_redeem(*, user: User, code: str, line: Line, at: dt.datetime) -> Gift:
    """Puts a code's data on the user's line. A code redeemed, cancelled or expired is refused."""
    if line.owner_id != user.pk:
        raise GiftError(_("That line is not yours."))
    with transaction.atomic():
        gift = (
            Gift.objects.select_for_update()
            .select_related("sender")
            .filter(code_hash=code_hash(code), kind=Gift.Kind.CODE)
            .first()
        )
        if gift is None:
            raise GiftError(_("There is no gift with that code. Check it and try again."))
        if gift.state == State.SENT and gift.expires_at <= at:  # type: ignore[operator]
            # Refused as expired; the minute sweep gives the data back (a refusal changes nothing).
            gift.state = State.EXPIRED
        if gift.state != State.SENT:
            raise GiftError(_("This gift code is no longer valid: it was %(state)s.") % _state_said(gift))
        pool_id = _current_pool_id(line)  # a line in a pool receives into the pool
        rows_lock(Pool, [pool_id] if pool_id else [])
        rows_lock(Line, _lines_of(pool_id, line.pk))
        line = Line.objects.select_related("plan").get(pk=line.pk)
        _recipient_check(line, at, from_line=gift.from_line, from_pool=gift.from_pool)
        sources = [entry.grant for entry in gift.entries.select_related("grant")]
        changed = _receive(gift, line, sources, at)
        lines_evaluate_after_commit(changed)
    _tell_sender_redeemed(gift, at)
    return gift


def _state_said(gift: Gift) -> dict[str, str]:
    return {"state": str(gift.get_state_display()).lower()}


def _give_back(gift: Gift, state: str, at: dt.datetime) -> None:
    """Returns a code's data to the lots it came from (a lot that expired meanwhile gets its data
    back expired, as it would have expired unused, or passes it to its unsettled carry-over). The
    gift row is locked by the caller."""
    returned = [
        GiftEntry(gift=gift, grant_id=entry.grant_id, delta_bytes=-entry.delta_bytes, created_at=at)
        for entry in gift.entries.filter(delta_bytes__lt=0)
    ]
    GiftEntry.objects.bulk_create(returned)
    Gift.objects.filter(pk=gift.pk).update(state=state, closed_at=at)
    gift.state, gift.closed_at = state, at
    lines_evaluate_after_commit(_lines_of(gift.from_pool_id, gift.from_line_id))


def _pool_lines(pool_id: int) -> list[int]:
    members = PoolMember.objects.filter(pool_id=pool_id, left_at__isnull=True)
    return list(members.values_list("line_id", flat=True))


def gift_cancel(*, gift: Gift, by: User, at: dt.datetime) -> Gift:
    """The sender takes back a code nobody has redeemed; the data returns to their lots."""
    with transaction.atomic():
        gift = Gift.objects.select_for_update().get(pk=gift.pk, sender=by)
        if gift.kind != Gift.Kind.CODE or gift.state != State.SENT:
            raise GiftError(_("This gift cannot be cancelled: it was %(state)s.") % _state_said(gift))
        _give_back(gift, State.EXPIRED if gift.expires_at <= at else State.CANCELLED, at)  # type: ignore[operator]
    return gift


def gift_codes_expire(*, at: dt.datetime) -> int:
    """Gives back the data of every code past its time. Safe to run twice (and beside a
    redemption): each gift is claimed under its row lock. Returns how many expired."""
    expired = 0
    due = Gift.objects.filter(state=State.SENT, kind=Gift.Kind.CODE, expires_at__lte=at)
    for gift_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            gift = Gift.objects.select_for_update().filter(pk=gift_id, state=State.SENT).first()
            if gift is not None:
                _give_back(gift, State.EXPIRED, at)
                expired += 1
                _tell(
                    gift.sender,
                    gift,
                    at,
                    gettext_noop("Your gift code for %(amount)s expired; the data is back."),
                )
    return expired


# --- Requests from supervised members -----------------------------------------------------------------
def gift_request_create(
    *, user: User, line: Line, amount_bytes: int, message: str, idempotency_key: uuid.UUID, at: dt.datetime
) -> GiftRequest:
    """A supervised member asks their pool's managers for data; every manager is told."""
    _amount_check(amount_bytes, gift_limits())
    member = (
        PoolMember.objects.filter(
            line=line, line__owner=user, left_at__isnull=True, role=PoolMember.Role.SUPERVISED
        )
        .select_related("pool", "line")
        .first()
    )
    if member is None:
        raise GiftError(_("Only a supervised member of a family pool asks its managers for data."))
    request, created = GiftRequest.objects.get_or_create(
        requester=user,
        idempotency_key=idempotency_key,
        defaults={"member": member, "amount_bytes": amount_bytes, "message": message, "created_at": at},
    )
    if created:
        transaction.on_commit(partial(_tell_managers_of_request, request.pk, at))
    return request


def _tell_managers_of_request(request_id: int, at: dt.datetime) -> None:
    request = GiftRequest.objects.select_related("member__pool", "member__line").get(pk=request_id)
    params = {"line": request.member.line.nickname, "amount": data_size(request.amount_bytes)}
    tell_managers(
        request.member.pool,
        at,
        gettext_noop("%(line)s asks for %(amount)s of data."),
        params,
        path=reverse("family:gifts") + "#requests",
        subject=(Notification.Subject.GIFT_REQUEST, request.pk),
    )


def _decided(request: GiftRequest, by: User, state: str, at: dt.datetime) -> GiftRequest:
    try:
        require_manager(request.member.pool, by)
    except PoolError as error:
        raise GiftError(str(error)) from error
    if request.state != GiftRequest.State.PENDING:
        raise GiftError(_("This request was already answered."))
    GiftRequest.objects.filter(pk=request.pk).update(state=state, decided_by=by, decided_at=at)
    request.state, request.decided_by, request.decided_at = state, by, at
    return request


def gift_request_approve(
    *, request: GiftRequest, by: User, at: dt.datetime, from_line: Line | None = None
) -> GiftRequest:
    """A manager approves: from the pool, the member's cap grows by the amount (the data is
    already the pool's); from the manager's own line, the data moves into the pool as a gift and
    the cap grows with it. Answered once, whichever manager clicks first."""
    with transaction.atomic():
        # The lock order of every gift: the manager, the pool, then lines (in gift_send).
        rows_lock(User, [by.pk])
        rows_lock(Pool, [request.member.pool_id])
        request = (
            GiftRequest.objects.select_for_update()
            .select_related("member__pool", "member__line")
            .get(pk=request.pk)
        )
        _decided(request, by, GiftRequest.State.APPROVED, at)
        member = request.member
        if from_line is not None:
            gift_send(
                sender=by,
                from_line=from_line,
                to_line=member.line,
                amount_bytes=request.amount_bytes,
                idempotency_key=request.idempotency_key,
                request=request,
                at=at,
            )
        if member.cap_bytes is not None:
            change = CapChange(member.pk, member.cap_bytes + request.amount_bytes, member.cap_action)
            try:
                pool_caps_set(pool=member.pool, by=by, changes=[change], at=at)
            except PoolError as error:
                raise GiftError(str(error)) from error
    _tell(request.requester, None, at, gettext_noop("Your request for %(amount)s was approved."), request)
    return request


def gift_request_decline(*, request: GiftRequest, by: User, at: dt.datetime) -> GiftRequest:
    with transaction.atomic():
        request = GiftRequest.objects.select_for_update().select_related("member__pool").get(pk=request.pk)
        _decided(request, by, GiftRequest.State.DECLINED, at)
    _tell(request.requester, None, at, gettext_noop("Your request for %(amount)s was declined."), request)
    return request


# --- Notices ------------------------------------------------------------------------------------------
def _tell(
    user: User, gift: Gift | None, at: dt.datetime, message: str, request: GiftRequest | None = None
) -> None:
    amount = gift.amount_bytes if gift else request.amount_bytes  # type: ignore[union-attr]
    with translation.override(user.language):
        user_notify(
            user,
            title=_("Gifts"),
            body=_(message)
            % {"amount": data_size(amount), "sender": masked_name(gift.sender) if gift else ""},
            path=reverse("family:gifts"),
            at=at,
            subject=(Notification.Subject.GIFT, gift.pk)
            if gift
            else (Notification.Subject.GIFT_REQUEST, request.pk),  # type: ignore[union-attr]
        )


def _tell_recipient(gift: Gift, at: dt.datetime) -> None:
    _tell(gift.to_line.claimed_owner, gift, at, gettext_noop("%(sender)s gave you %(amount)s of data."))  # type: ignore[union-attr]


def _tell_sender_redeemed(gift: Gift, at: dt.datetime) -> None:
    _tell(gift.sender, gift, at, gettext_noop("Your gift code for %(amount)s was redeemed."))
