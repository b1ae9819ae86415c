from decimal import Decimal
from typing import cast

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from alerts.models import AlertRule, WebhookEndpoint
from alerts.webhooks import UnsafeURL, webhook_url_check
from esimdash.units import MB

Kind = AlertRule.Kind

# The fields each kind needs; the others are cleared so a rule never carries a stale threshold.
NEEDS = {
    Kind.USED_PERCENT: {"percent"},
    Kind.REMAINING: {"threshold_mb"},
    Kind.WINDOW: {"window", "threshold_mb"},
    Kind.TETHERED: {"threshold_mb"},
    Kind.NEW_COUNTRY: set(),
    Kind.DAYS_ABROAD: {"days"},
    Kind.EXPIRY: {"hours"},
    Kind.BACKGROUND_LEAK: {"leak_factor"},
    Kind.FIRST_CELLULAR: set(),
}
_MISSING = {
    "percent": _("Give the share of the allowance, from 1 to 100 %."),
    "threshold_mb": _("Give an amount of data in MB."),
    "window": _("Choose the time window."),
    "days": _("Give a number of days."),
    "hours": _("Give a number of hours."),
    "leak_factor": _("Give how many times the usual level counts as a leak."),
}


# Each bounded number's range, said in one message whichever end it misses.
BOUNDS = {"percent": (1, 100), "days": (1, 365), "hours": (1, 2160), "leak_factor": (2, 100)}
KIND_FIELDS = frozenset(field for needed in NEEDS.values() for field in needed)


class AlertRuleForm(forms.ModelForm):
    """Shows only the fields of the chosen kind (from the data, the initial values or the rule);
    before a kind is chosen, none. A rule's kind is fixed once made: another kind is a new rule."""

    threshold_mb = forms.DecimalField(
        label=_("Amount (MB)"),
        required=False,
        min_value=Decimal("0.001"),
        max_value=Decimal(10**7),
        decimal_places=3,
        error_messages={
            "min_value": _("Give an amount of data above 0 MB."),
            "max_value": _("Give an amount of data up to 10,000,000 MB."),
        },
    )

    class Meta:
        model = AlertRule
        fields = (
            "kind",
            "percent",
            "threshold_mb",
            "window",
            "days",
            "hours",
            "leak_factor",
            "name",
            "action",
            "notify_email",
            "notify_webhook",
        )
        labels = {
            "kind": _("What to watch"),
            "hours": _("Within (hours)"),
            "days": _("Days in a row"),
            "percent": _("Used (%)"),
        }
        error_messages = {
            "kind": {"required": _("Choose what to watch."), "invalid_choice": _("Choose what to watch.")}
        }

    def __init__(self, *args, **kwargs) -> None:
        # Labels sit above their fields: no colon (Django's is ASCII, wrong in Chinese and Japanese).
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = _("Leave empty to name the rule after its kind.")
        self.fields["leak_factor"].required = False
        for name, (low, high) in BOUNDS.items():
            field = cast(forms.IntegerField, self.fields[name])
            message = _("Choose a number from %(low)s to %(high)s.") % {"low": low, "high": high}
            field.validators = [MinValueValidator(low), MaxValueValidator(high)]
            field.error_messages = {**field.error_messages, "min_value": message, "max_value": message}
            field.widget.attrs.update(min=low, max=high)
        # A line's rule: the pool kinds watch a pool and are made with it.
        kind = cast(forms.TypedChoiceField, self.fields["kind"])
        choices = cast(list[tuple[str, str]], kind.choices)  # the model field's, with Django's blank first
        kind.choices = [("", _("Choose what to watch"))] + [
            choice for choice in choices if choice[0] and choice[0] not in AlertRule.POOL_KINDS
        ]
        window = cast(forms.TypedChoiceField, self.fields["window"])
        window.choices = [("", _("Choose a time window")), *AlertRule.Window.choices]
        if self.instance.pk:
            kind.disabled = True
        self.chosen_kind = self._chosen_kind()
        for name in KIND_FIELDS - (NEEDS[self.chosen_kind] if self.chosen_kind else set()):
            del self.fields[name]
        if self.instance.threshold_bytes is not None:
            self.initial["threshold_mb"] = Decimal(self.instance.threshold_bytes) / MB

    def _chosen_kind(self) -> Kind | None:
        if self.instance.pk:
            return Kind(self.instance.kind)
        value = self.data.get(self.add_prefix("kind")) if self.is_bound else self.initial.get("kind")
        return Kind(value) if value in Kind.values and value not in AlertRule.POOL_KINDS else None

    def clean(self) -> dict:
        super().clean()
        cleaned = self.cleaned_data
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        needed = NEEDS[Kind(kind)]
        for name in needed:
            # A value refused by its field already says why; "missing" would be a second, wrong error.
            if name not in self.errors and cleaned.get(name) in (None, ""):
                self.add_error(name, _MISSING[name])
        for name in KIND_FIELDS - needed:
            cleaned.pop(name, None)  # save() clears it: a rule never carries a stale threshold
        if not cleaned.get("name"):
            cleaned["name"] = str(Kind(kind).label)
        return cleaned

    def save(self, commit: bool = True) -> AlertRule:
        rule = super().save(commit=False)
        amount = self.cleaned_data.get("threshold_mb")
        rule.threshold_bytes = int(amount * MB) if amount is not None else None
        rule.name = self.cleaned_data["name"]
        rule.leak_factor = (
            self.cleaned_data.get("leak_factor") or AlertRule._meta.get_field("leak_factor").default
        )
        rule.window = self.cleaned_data.get("window") or ""
        for name in ("percent", "days", "hours"):
            setattr(rule, name, self.cleaned_data.get(name))
        if commit:
            rule.save()
        return rule


class SnoozeForm(forms.Form):
    hours = forms.IntegerField(label=_("Snooze for (hours)"), min_value=1, max_value=168, initial=24)


class WebhookForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ("url",)
        labels = {"url": _("URL")}

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            webhook_url_check(url)
        except UnsafeURL as error:
            raise forms.ValidationError(str(error)) from error
        return url
