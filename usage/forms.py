from django import forms

from plans.models import AddOn


class BuyForm(forms.Form):
    """One add-on's order. Whether the line's plan offers it is the service's to say."""

    add_on = forms.ModelChoiceField(queryset=AddOn.objects.all())
    idempotency_key = forms.UUIDField()
