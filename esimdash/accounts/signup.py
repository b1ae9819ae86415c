"""The sign-up form's own fields. Apart from forms.py: allauth imports ACCOUNT_SIGNUP_FORM_CLASS while
its own forms module loads, so this module may not import that one."""

from django import forms
from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from esimdash.accounts.models import User, default_time_zone
from esimdash.places import time_zone_choices


class TimeZoneField(forms.ChoiceField):
    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("initial", default_time_zone)
        super().__init__(choices=time_zone_choices, label=_("Time zone"), **kwargs)  # type: ignore[arg-type]


class SignUpPreferencesForm(forms.Form):
    """What allauth's sign-up form asks besides the address and password: the zone and language
    every page and notice is shown in (django-allauth's ACCOUNT_SIGNUP_FORM_CLASS)."""

    time_zone = TimeZoneField()
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["language"].initial = translation.get_language()

    def signup(self, request: HttpRequest, user: User) -> None:
        user.time_zone = self.cleaned_data["time_zone"]
        user.language = self.cleaned_data["language"]
        user.save(update_fields=["time_zone", "language"])
