"""The family pages' forms: they parse what is posted; the services in family/pools.py and
family/gifts.py decide what is allowed and say why not."""

import decimal
import uuid
from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from esimdash.units import GB, MB
from family.gifts import gift_limits, line_digits
from family.pools import CAP_MIN_BYTES, CapChange, cap_too_small, lines_free_to_join, lines_to_start_a_pool
from plans.models import Line, Pool, PoolMember
from plans.selectors import gift_sources, lines_for_user


class GigabytesField(forms.Field):
    """An amount of data typed in GB (decimal, as carriers sell it), cleaned to whole bytes; empty
    is None. More decimals than a byte has (9) are refused rather than cut off, and with
    `minimum_bytes`, less than that."""

    default_error_messages = {
        "invalid": gettext_lazy("Enter a number of GB."),
        "decimals": gettext_lazy("Enter a number of GB with at most 9 decimal places."),
        "below_minimum": gettext_lazy("Enter a larger number of GB."),
    }

    def __init__(self, *, minimum_bytes: int | None = None, **kwargs: Any) -> None:
        self.minimum_bytes = minimum_bytes
        super().__init__(**kwargs)

    def to_python(self, value: object) -> int | None:
        text = "" if value is None else str(value).strip()
        if text == "":
            return None
        # Raised without params, so a message naming a line can hold "%" safely.
        try:
            gigabytes = decimal.Decimal(text)
        except decimal.InvalidOperation:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if not gigabytes.is_finite():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        amount_bytes = gigabytes * GB
        if amount_bytes != amount_bytes.to_integral_value():
            raise ValidationError(self.error_messages["decimals"], code="decimals")
        return int(amount_bytes)

    def validate(self, value: int | None) -> None:
        super().validate(value)
        if self.minimum_bytes is not None and value is not None and value < self.minimum_bytes:
            raise ValidationError(self.error_messages["below_minimum"], code="below_minimum")


class PoolStartForm(forms.Form):
    line = forms.ModelChoiceField(queryset=Line.objects.none())
    name = forms.CharField()

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines = lines_to_start_a_pool(user).select_related("plan")
        cast(forms.ModelChoiceField, self.fields["line"]).queryset = self.lines

    def clean_name(self) -> str:
        return self.cleaned_data["name"][:64]


class InviteForm(forms.Form):
    """Whom to invite (an e-mail address or a username: pool_member_invite tells them apart) and as
    what; the role is checked by the service against what the inviter may do."""

    to = forms.CharField(required=False)
    role = forms.CharField(required=False, strip=False)

    def clean_role(self) -> str:
        # Left out, a plain member; sent, whatever was sent, for the service to accept or refuse.
        return self.cleaned_data["role"] if "role" in self.data else PoolMember.Role.MEMBER


class InviteAnswerForm(forms.Form):
    """The invitee's answer. It offers the lines free to join the pool, and takes any line of
    theirs: for one that may not join, pool_invite_accept says why (expired, in a pool, of
    another carrier)."""

    line = forms.ModelChoiceField(queryset=Line.objects.none())

    def __init__(self, *args: Any, user: Any, pool: Pool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines = lines_free_to_join(user, pool)
        cast(forms.ModelChoiceField, self.fields["line"]).queryset = Line.objects.filter(owner=user)

    def declines(self) -> bool:
        """The Decline button was pressed: no line is needed then."""
        return self.data.get("answer") == "decline"


class PoolLowForm(forms.Form):
    """The share of the pool's data left at which its managers are told (pool_low_percent_set
    checks the range and says it)."""

    percent = forms.IntegerField(
        error_messages={
            "required": gettext_lazy("Enter the share of the pool's data, in percent."),
            "invalid": gettext_lazy("Enter the share of the pool's data as a whole number."),
        }
    )


class ReserveForm(forms.Form):
    reserve = GigabytesField(
        required=False,
        error_messages={
            "invalid": gettext_lazy("The reserve is not a number of GB."),
            "decimals": gettext_lazy("The reserve has more than 9 decimal places."),
        },
    )

    def clean_reserve(self) -> int:
        return self.cleaned_data["reserve"] or 0  # empty: nothing kept


class CapsForm(forms.Form):
    """`cap-<member id>` in GB (empty: no cap) and `action-<member id>` for each member. A member
    whose fields were not sent keeps its cap: the page leaves out those the viewer may not cap."""

    def __init__(self, *args: Any, members: Sequence[PoolMember], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = list(members)
        for member in self.members:
            line = {"line": member.line.nickname}
            # The minimum is the service's (pool_caps_set refuses the same, in the same words):
            # the preview and the save run this form, so they agree on what a cap may be.
            self.fields[f"cap-{member.pk}"] = GigabytesField(
                required=False,
                minimum_bytes=CAP_MIN_BYTES,
                error_messages={
                    "invalid": _("The cap for %(line)s is not a number of GB.") % line,
                    "decimals": _("The cap for %(line)s has more than 9 decimal places.") % line,
                    "below_minimum": cap_too_small(member.line.nickname),
                },
            )
            # What happens at the cap: pool_caps_set checks it against PoolMember.CapAction.
            self.fields[f"action-{member.pk}"] = forms.CharField(required=False, strip=False)

    def first_error(self) -> str:
        """The first member's error, as one message for the page."""
        return str(next(iter(self.errors.values()))[0])

    def errors_by_member(self) -> dict[int, str]:
        """Each member's first error, for the page to show on that member's row."""
        by_field = {name: str(errors[0]) for name, errors in self.errors.items()}
        return {
            member.pk: by_field.get(f"cap-{member.pk}") or by_field[f"action-{member.pk}"]
            for member in self.members
            if f"cap-{member.pk}" in by_field or f"action-{member.pk}" in by_field
        }

    def changes(self) -> list[CapChange]:
        """The members whose cap or action was sent and differs from what they have."""
        changes = []
        for member in self.members:
            cap_key, action_key = f"cap-{member.pk}", f"action-{member.pk}"
            if cap_key not in self.data and action_key not in self.data:
                continue
            cap = self.cleaned_data[cap_key] if cap_key in self.data else member.cap_bytes
            action = self.cleaned_data[action_key] if action_key in self.data else member.cap_action
            if (cap, action) != (member.cap_bytes, member.cap_action):
                changes.append(CapChange(member.pk, cap, action))
        return changes


class GiftForm(forms.Form):
    source = forms.ChoiceField(label=gettext_lazy("Give from"))
    amount_mb = forms.IntegerField(label=gettext_lazy("Amount (MB)"), min_value=1)
    to = forms.CharField(
        label=gettext_lazy("To (username or phone number)"),
        required=False,
        max_length=64,
        help_text=gettext_lazy("Leave it empty to make a gift code instead."),
    )
    key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        lines, pools = gift_sources(user)
        self.lines, self.pools = {line.pk: line for line in lines}, {pool.pk: pool for pool in pools}
        self.source_choices = [(f"line:{line.pk}", line.nickname) for line in lines] + [
            (f"pool:{pool.pk}", _("Pool: %(name)s") % {"name": pool.name}) for pool in pools
        ]
        cast(forms.ChoiceField, self.fields["source"]).choices = self.source_choices
        # Hints for the browser; gift_send checks the limits and says which one a gift breaks.
        limits = gift_limits()
        self.fields["amount_mb"].widget.attrs.update(
            min=limits.min_bytes // MB, max=limits.max_bytes // MB, step=limits.unit_bytes // MB
        )
        self.fields["source"].widget.attrs["aria-describedby"] = "gift-room"  # what each source can give
        self.initial.setdefault("key", uuid.uuid4())

    def sender(self) -> dict:
        """from_line or from_pool, for gift_send."""
        return self._source_of(self.cleaned_data["source"])

    def sources(self) -> list[tuple[str, dict]]:
        """Each source as the list shows it, with its from_line or from_pool."""
        return [(label, self._source_of(value)) for value, label in self.source_choices]

    def _source_of(self, value: str) -> dict:
        kind, pk = value.split(":")
        return {"from_line": self.lines[int(pk)]} if kind == "line" else {"from_pool": self.pools[int(pk)]}


class _LineChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Line) -> str:
        # The digits a sender confirms the recipient by (family.gifts.line_digits).
        return f"{obj.nickname} · {line_digits(obj)}"


class RedeemForm(forms.Form):
    """The code and the line to put its data on: one of the user's lines that can receive a gift
    (family.gifts.lines_to_receive)."""

    code = forms.CharField(label=gettext_lazy("Gift code"), max_length=32)
    line = _LineChoiceField(
        queryset=Line.objects.none(), label=gettext_lazy("Put the data on"), empty_label=None
    )

    def __init__(self, *args, user, lines: Sequence[Line], **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = list(lines)
        self.has_lines = lines_for_user(user).exists()
        self.code_valid_hours = int(gift_limits().code_valid_for.total_seconds() // 3600)
        field = cast(forms.ModelChoiceField, self.fields["line"])
        field.queryset = Line.objects.filter(pk__in=[line.pk for line in self.lines]).select_related("plan")


class RequestForm(forms.Form):
    line = forms.ModelChoiceField(
        queryset=Line.objects.none(), label=gettext_lazy("For the line"), empty_label=None
    )
    amount_mb = forms.IntegerField(label=gettext_lazy("Amount (MB)"), min_value=1)
    message = forms.CharField(label=gettext_lazy("Message"), required=False, max_length=200)
    key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        supervised = PoolMember.objects.filter(
            line__owner=user, left_at__isnull=True, role=PoolMember.Role.SUPERVISED
        ).values("line")
        self.lines = lines_for_user(user).filter(pk__in=supervised)
        cast(forms.ModelChoiceField, self.fields["line"]).queryset = self.lines
        self.initial.setdefault("key", uuid.uuid4())
