from allauth.account.forms import ResetPasswordForm
from allauth.account.models import EmailAddress
from allauth.mfa.webauthn.forms import AddWebAuthnForm, EditWebAuthnForm
from django import forms
from django.utils.translation import gettext_lazy as _

from esimdash.accounts.models import User
from esimdash.accounts.signup import TimeZoneField


class ProfileForm(forms.ModelForm):
    time_zone = TimeZoneField()

    class Meta:
        model = User
        fields = ("first_name", "last_name", "time_zone", "language", "quiet_hours_start", "quiet_hours_end")
        widgets = {
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time"}),
        }


class ConfirmedResetPasswordForm(ResetPasswordForm):
    """Resets go to confirmed addresses, and to accounts that never signed in: a mistyped address
    is a stranger's, who must not take over an account that was used. An account that never signed
    in (nobody signs in before confirming) holds nothing, and its address may be someone else's
    typed at sign-up: the address's real owner, told at sign-up that it "already has an account",
    takes it over by resetting, and so is never kept out of their own address."""

    def clean_email(self) -> str:
        email = super().clean_email()
        confirmed = EmailAddress.objects.filter(email__iexact=email, verified=True)
        owners = set(confirmed.values_list("user_id", flat=True))
        self.users: list[User] = [user for user in self.users if user.pk in owners or user.last_login is None]
        return email


# allauth leaves a passkey's name unlabelled, so Django labels it "Name" in English on every page.
class NamedAddWebAuthnForm(AddWebAuthnForm):
    name = forms.CharField(label=_("Name"), required=False)


class NamedEditWebAuthnForm(EditWebAuthnForm):
    name = forms.CharField(label=_("Name"))
