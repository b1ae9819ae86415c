"""Family reads that need care: the pool's data as one bar split by member, and what a pool's caps
would do, before they are saved."""

from collections.abc import Sequence
from dataclasses import dataclass

from family.pools import CapChange
from plans.models import PoolMember
from usage.balances import PoolBalance, cap_is_reached, cap_left_bytes
from usage.summaries import PoolSummary

SWATCHES = 6
"""Member colours in the pool's bar (app.css, `.seg-m0` to `.seg-m5`); a seventh member takes the
first again."""


@dataclass(frozen=True)
class Segment:
    """One stretch of the pool's bar, in percent of its length."""

    css: str
    """`m<n>` for a member's use (the swatch on their row), `others` for what members who left
    used, `reserve` for the owner's reserve still kept, `left` for what anyone may still use."""
    start_percent: float
    width_percent: float


def pool_allocation(balance: PoolBalance) -> list[Segment]:
    """The pool's data this cycle as one bar: each member's use in joining order, then what former
    members used, the owner's reserve still kept, and what is left. Use beyond the pool's data
    (while slowed down) lengthens the whole, so the bar still adds up."""
    member_used = [usage.used_bytes for usage in balance.members]
    others = max(0, balance.used_bytes - sum(member_used))
    reserve = min(balance.reserve_outstanding_bytes, balance.remaining_bytes)
    amounts = [
        *((f"m{index % SWATCHES}", used) for index, used in enumerate(member_used)),
        ("others", others),
        ("reserve", reserve),
        ("left", max(0, balance.remaining_bytes - reserve)),
    ]
    whole = sum(amount for _css, amount in amounts)
    segments, start = [], 0.0
    for css, amount in amounts:
        if amount and whole:
            width = 100 * amount / whole
            segments.append(Segment(css=css, start_percent=round(start, 3), width_percent=round(width, 3)))
            start += width
    return segments


@dataclass(frozen=True)
class CapOutcome:
    """One member under the caps in a form: its cap against what it used this cycle."""

    line_nickname: str
    cap_bytes: int | None
    used_bytes: int
    left_bytes: int | None
    over_now: bool
    cap_action_label: str
    changed: bool


@dataclass(frozen=True)
class CapsOutcome:
    members: list[CapOutcome]
    capped_total_bytes: int
    available_bytes: int
    """What the pool holds for its members: its data less the owner's reserve."""

    @property
    def oversubscribed(self) -> bool:
        return self.capped_total_bytes > self.available_bytes


def pool_caps_outcome(summary: PoolSummary, changes: Sequence[CapChange]) -> CapsOutcome:
    """What `changes` would do to the pool in `summary`: each member's cap (changed or kept) against
    what it used this cycle, and whether the caps add up to more than the pool holds for members."""
    by_member = {change.member_id: change for change in changes}
    members, capped_total = [], 0
    for usage in summary.balance.members:
        change = by_member.get(usage.member.pk)
        cap = change.cap_bytes if change else usage.member.cap_bytes
        action = change.cap_action if change else usage.member.cap_action
        capped_total += cap or 0
        members.append(
            CapOutcome(
                line_nickname=usage.member.line.nickname,
                cap_bytes=cap,
                used_bytes=usage.used_bytes,
                left_bytes=cap_left_bytes(cap, usage.used_bytes),
                over_now=cap_is_reached(cap, usage.used_bytes),
                cap_action_label=str(PoolMember.CapAction(action).label),
                changed=change is not None,
            )
        )
    available = max(0, summary.balance.total_bytes - summary.balance.pool.owner_reserve_bytes)
    return CapsOutcome(members=members, capped_total_bytes=capped_total, available_bytes=available)
