from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordResetForm, UserCreationForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from esimdash.accounts.models import User, default_time_zone, email_confirmed_by_another
from esimdash.places import time_zone_choices


class TimeZoneField(forms.ChoiceField):
    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("initial", default_time_zone)
        super().__init__(choices=time_zone_choices, label=_("Time zone"), **kwargs)  # type: ignore[arg-type]


class SignUpForm(UserCreationForm):
    email = forms.EmailField(
        label=_("E-mail address"),
        help_text=_("Where your alerts and notices are sent, and how you reset your password."),
    )
    time_zone = TimeZoneField()

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email", "time_zone", "language")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        email_check_unused(email)
        return email


class ProfileForm(forms.ModelForm):
    time_zone = TimeZoneField()

    class Meta:
        model = User
        fields = ("first_name", "last_name", "time_zone", "language", "quiet_hours_start", "quiet_hours_end")
        widgets = {
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time"}),
        }


class EmailChangeForm(forms.Form):
    """The new address; it takes effect only once the link sent to it is opened."""

    email = forms.EmailField(
        label=_("E-mail address"),
        help_text=_("Where your alerts and notices are sent, and how you reset your password."),
    )

    def __init__(self, user: User, *args: object, **kwargs: object) -> None:
        self.user = user
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        # The same address again while unconfirmed sends a new link.
        if email.lower() == self.user.confirmed_email.lower():
            raise forms.ValidationError(_("This is already your e-mail address."))
        email_check_unused(email, besides=self.user)
        return email


def email_check_unused(email: str, *, besides: User | None = None) -> None:
    if email_confirmed_by_another(email, besides=besides):
        raise forms.ValidationError(_("An account with this e-mail address already exists."))


class ReauthenticationForm(forms.Form):
    """The signed-in user's password, checked through authenticate() so that django-axes counts
    wrong ones: a taken-over session cannot guess the password here any faster than at sign-in."""

    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, request: HttpRequest, *args: object, **kwargs: object) -> None:
        self.request = request
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        user = self.request.user
        confirmed = authenticate(self.request, username=user.get_username(), password=password)
        if confirmed is None or confirmed.pk != user.pk:
            raise forms.ValidationError(_("That is not your password."))
        return password


class ConfirmedPasswordResetForm(PasswordResetForm):
    """Resets go to confirmed addresses only: a mistyped address at sign-up is a stranger's, who
    could otherwise ask for the reset link and take the account over."""

    def get_users(self, email: str):
        return (user for user in super().get_users(email) if user.email_confirmed_at)
