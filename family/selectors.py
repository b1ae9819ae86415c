"""Family reads that need care: what a pool's caps would do, before they are saved."""

from collections.abc import Sequence
from dataclasses import dataclass

from family.pools import CapChange
from plans.models import PoolMember
from usage.balances import cap_is_reached, cap_left_bytes
from usage.summaries import PoolSummary


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
