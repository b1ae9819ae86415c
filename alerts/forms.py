from decimal import Decimal
from typing import cast

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from alerts.models import AlertRule, WebhookEndpoint
from alerts.top_up import TOP_UP_KINDS
from alerts.webhooks import UnsafeURL, webhook_url_check
from esimdash.units import MB, data_size, yen
from plans.models import AddOn, Plan

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


# What an auto top-up buys and its guardrails: shown on the kinds that may buy.
TOP_UP_FIELDS = ("add_on", "top_up_max_per_cycle", "top_up_max_yen_per_month", "top_up_not_in_quiet_hours")

# Each bounded number's range, said in one message whichever end it misses.
BOUNDS = {"percent": (1, 100), "days": (1, 365), "hours": (1, 2160), "leak_factor": (2, 100)}
KIND_FIELDS = frozenset(field for needed in NEEDS.values() for field in needed)


class AddOnChoiceField(forms.ModelChoiceField):
    """An add-on as the person compares them: amount, validity and price."""

    def label_from_instance(self, obj: AddOn) -> str:
        return _add_on_label(obj)


def _add_on_label(add_on: AddOn) -> str:
    return _("%(name)s · %(amount)s for %(days)s days · %(price)s") % {
        "name": add_on.name,
        "amount": data_size(add_on.amount_bytes),
        "days": add_on.validity_days,
        "price": yen(add_on.price_jpy),
    }


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
            *TOP_UP_FIELDS,
            "notify_email",
            "notify_webhook",
        )
        field_classes = {"add_on": AddOnChoiceField}
        labels = {
            "kind": _("What to watch"),
            "hours": _("Within (hours)"),
            "days": _("Days in a row"),
            "percent": _("Used (%)"),
            "add_on": _("Buy"),
            "top_up_max_per_cycle": _("At most this many times a cycle"),
            "top_up_max_yen_per_month": _("At most this much a month (¥)"),
            "top_up_not_in_quiet_hours": _("Not during my quiet hours (buy when they end)"),
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
        self._top_up_fields_set()

    def _top_up_fields_set(self) -> None:
        """The add-ons of the line's plan to choose from, on the kinds that may buy; elsewhere no
        top-up fields and no "Buy more data" action."""
        action = cast(forms.TypedChoiceField, self.fields["action"])
        action.error_messages["invalid_choice"] = _(
            "Only a rule on remaining data can buy data. Choose another action."
        )
        if self.chosen_kind not in TOP_UP_KINDS:
            choices = cast(list[tuple[str, str]], action.choices)
            action.choices = [choice for choice in choices if choice[0] != AlertRule.Action.TOP_UP]
            for name in TOP_UP_FIELDS:
                del self.fields[name]
            return
        top_up_fields_prepare(self, self.instance.line.plan if self.instance.line_id else None)
        self.fields["add_on"].help_text = _("Used when the action is “Buy more data”.")

    def _top_up_clean(self, cleaned: dict) -> None:
        """Only the line's owner spends on it; the rule must say what to buy, within its monthly cap."""
        if cleaned.get("action") != AlertRule.Action.TOP_UP:
            cleaned["add_on"] = None
            top_up_defaults_fill(self, cleaned)
            return
        if self.instance.line_id and self.instance.created_by_id != self.instance.line.owner_id:
            self.add_error("action", _("Only the line's owner can have a rule buy data for it."))
            return
        top_up_check(self, cleaned)

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
        if Kind(kind) in TOP_UP_KINDS:
            self._top_up_clean(cleaned)
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


def top_up_fields_prepare(form: forms.ModelForm, plan: Plan | None) -> None:
    """The top-up fields of a rule form: the plan's add-ons to choose from, bounded guardrails."""
    add_on = cast(forms.ModelChoiceField, form.fields["add_on"])
    add_on.queryset = plan.add_ons.filter(active=True) if plan is not None else AddOn.objects.none()
    add_on.empty_label = _("Choose what to buy")
    add_on.error_messages["invalid_choice"] = _("Choose one of this line's add-ons.")
    for name, low, high in (("top_up_max_per_cycle", 1, 10), ("top_up_max_yen_per_month", 1, 100_000)):
        field = cast(forms.IntegerField, form.fields[name])
        message = _("Choose a number from %(low)s to %(high)s.") % {"low": low, "high": high}
        field.required = False  # left empty: the model's default
        field.validators = [MinValueValidator(low), MaxValueValidator(high)]
        field.error_messages = {**field.error_messages, "min_value": message, "max_value": message}
        field.widget.attrs.update(min=low, max=high)


def top_up_defaults_fill(form: forms.ModelForm, cleaned: dict) -> None:
    for name in ("top_up_max_per_cycle", "top_up_max_yen_per_month"):
        if name not in form.errors and cleaned.get(name) is None:
            cleaned[name] = cast(models.Field, AlertRule._meta.get_field(name)).default


def top_up_check(form: forms.ModelForm, cleaned: dict) -> None:
    """A rule that buys says what, and its monthly limit allows at least one."""
    top_up_defaults_fill(form, cleaned)
    add_on = cleaned.get("add_on")
    if add_on is None:
        if "add_on" not in form.errors:
            form.add_error("add_on", _("Choose what to buy when the rule fires."))
        return
    cap = cleaned.get("top_up_max_yen_per_month")
    if cap is not None and add_on.price_jpy > cap:
        form.add_error(
            "top_up_max_yen_per_month",
            _("%(add_on)s costs %(price)s, more than this monthly limit: raise it or choose another.")
            % {"add_on": add_on.name, "price": yen(add_on.price_jpy)},
        )


class PoolTopUpForm(forms.ModelForm):
    """A pool's auto top-up: its "pool_low" rule buys an add-on of the pool's plan, for the pool,
    paid by its owner (the only one who may set it)."""

    buy = forms.BooleanField(label=_("Buy more data when the pool runs low"), required=False)
    field_order = ["buy", *TOP_UP_FIELDS]

    class Meta:
        model = AlertRule
        fields = TOP_UP_FIELDS
        field_classes = AlertRuleForm.Meta.field_classes
        labels = AlertRuleForm.Meta.labels

    def __init__(self, *args, plan: Plan, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        top_up_fields_prepare(self, plan)
        self.fields["add_on"].error_messages["invalid_choice"] = _("Choose one of this pool's add-ons.")
        self.initial.setdefault("buy", self.instance.action == AlertRule.Action.TOP_UP)

    def clean(self) -> dict:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("buy"):
            top_up_check(self, cleaned)
        else:
            top_up_defaults_fill(self, cleaned)
        return cleaned


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
