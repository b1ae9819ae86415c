from decimal import Decimal
from typing import cast

from django import forms
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


class AlertRuleForm(forms.ModelForm):
    threshold_mb = forms.DecimalField(
        label=_("Amount (MB)"),
        required=False,
        min_value=Decimal("0.001"),
        max_value=Decimal(10**7),
        decimal_places=3,
    )

    class Meta:
        model = AlertRule
        fields = (
            "name",
            "kind",
            "percent",
            "threshold_mb",
            "window",
            "days",
            "hours",
            "leak_factor",
            "action",
            "notify_email",
            "notify_webhook",
        )
        labels = {"hours": _("Within (hours)"), "days": _("Days in a row"), "percent": _("Used (%)")}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = _("Leave empty to name the rule after its kind.")
        self.fields["percent"].widget.attrs.update(min=1, max=100)
        self.fields["days"].widget.attrs.update(min=1, max=365)
        self.fields["hours"].widget.attrs.update(min=1, max=2160)
        self.fields["leak_factor"].widget.attrs.update(min=2, max=100)
        self.fields["leak_factor"].required = False
        # A line's rule: the pool kinds watch a pool and are made with it.
        kind = cast(forms.TypedChoiceField, self.fields["kind"])
        choices = cast(list[tuple[str, str]], kind.choices)  # the model field's, with Django's blank first
        kind.choices = [choice for choice in choices if choice[0] not in AlertRule.POOL_KINDS]
        if self.instance.threshold_bytes is not None:
            self.initial["threshold_mb"] = Decimal(self.instance.threshold_bytes) / MB

    def clean(self) -> dict:
        super().clean()
        cleaned = self.cleaned_data
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        needed = NEEDS[Kind(kind)]
        for name in needed:
            if cleaned.get(name) in (None, ""):
                self.add_error(name, _MISSING[name])
        bounds = {"percent": (1, 100), "days": (1, 365), "hours": (1, 2160), "leak_factor": (2, 100)}
        for name, (low, high) in bounds.items():
            value = cleaned.get(name)
            if name in needed and value is not None and not low <= value <= high:
                self.add_error(
                    name, _("Choose a number from %(low)s to %(high)s.") % {"low": low, "high": high}
                )
        for name in ("percent", "window", "days", "hours", "threshold_mb"):
            if name not in needed:
                cleaned[name] = "" if name == "window" else None
        if cleaned.get("leak_factor") is None:
            cleaned["leak_factor"] = AlertRule._meta.get_field("leak_factor").default
        if not cleaned.get("name"):
            cleaned["name"] = str(Kind(kind).label)
        return cleaned

    def save(self, commit: bool = True) -> AlertRule:
        rule = super().save(commit=False)
        amount = self.cleaned_data.get("threshold_mb")
        rule.threshold_bytes = int(amount * MB) if amount is not None else None
        for name in ("percent", "window", "days", "hours", "name", "leak_factor"):
            setattr(rule, name, self.cleaned_data[name])
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
