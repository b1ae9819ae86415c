from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy

from plans.models import AddOn
from plans.services import activation_matching_id
from plans.validators import validate_iccid
from usage.claims import ClaimError, activation_text_in_photo, iccid_normalize


class LineClaimForm(forms.Form):
    """The ICCID and the activation code of a line to add: the code typed, pasted as the whole
    `LPA:1$…$…` text, or read from a photo of its QR code (in the browser when it can, else here).
    A typed code wins over a photo; the photo is read only when no code was typed."""

    iccid = forms.CharField(
        label=gettext_lazy("ICCID"),
        max_length=40,
        help_text=gettext_lazy("19 or 20 digits, printed with your eSIM; spaces are fine."),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "autocapitalize": "off"}
        ),
    )
    code = forms.CharField(
        label=gettext_lazy("Activation code"),
        required=False,
        max_length=300,
        help_text=gettext_lazy(
            "The code printed with your eSIM, or the whole text that begins with LPA:1$ (upper or "
            "lower case, spaces are fine)."
        ),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    photo = forms.FileField(
        label=gettext_lazy("Or scan the QR code"),
        required=False,
        help_text=gettext_lazy(
            "Take or choose a photo of the eSIM's QR code; its code fills the field above."
        ),
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "environment", "data-qr-photo": ""}),
    )
    nickname = forms.CharField(
        label=gettext_lazy("Nickname (optional)"),
        required=False,
        max_length=64,
        help_text=gettext_lazy("How the line is named on your pages; without one, the plan's name."),
    )

    def clean_iccid(self) -> str:
        iccid = iccid_normalize(self.cleaned_data["iccid"])
        validate_iccid(iccid)  # what is wrong with it, before any line is looked up
        return iccid

    def clean_photo(self):
        photo = self.cleaned_data.get("photo")
        if photo and photo.size > settings.LINE_CLAIM_PHOTO_MAX_BYTES:
            raise forms.ValidationError(
                gettext_lazy("The photo is larger than %(mb)s MB: take it again, or type the code."),
                params={"mb": settings.LINE_CLAIM_PHOTO_MAX_BYTES // (1024 * 1024)},
                code="too_big",
            )
        return photo

    def clean(self):
        cleaned = self.cleaned_data
        code, photo = (cleaned.get("code") or "").strip(), cleaned.get("photo")
        if not code and photo and "photo" not in self.errors:
            code = self._code_in_photo(photo)
        elif code:
            self._check_text(code, field="code")
        elif "photo" not in self.errors:
            self.add_error("code", gettext_lazy("Enter the activation code, or scan its QR code."))
        cleaned["code"] = code
        return cleaned

    def _code_in_photo(self, photo) -> str:
        try:
            text = activation_text_in_photo(photo)
        except ClaimError as error:
            self.add_error("photo", str(error))
            return ""
        if text is None:
            self.add_error(
                "photo",
                gettext_lazy(
                    "No QR code was found in the photo. Take it again closer and in good light, "
                    "or type the code."
                ),
            )
            return ""
        if not text.strip().upper().startswith("LPA:"):
            self.add_error(
                "photo",
                gettext_lazy(
                    "The QR code in the photo is not an eSIM's: its text does not begin with LPA:1$."
                ),
            )
            return ""
        self._check_text(text, field="photo")
        return text

    def _check_text(self, text: str, *, field: str) -> None:
        if not activation_matching_id(text):
            self.add_error(
                field,
                gettext_lazy(
                    "This LPA:1$ text has no activation code: it ends before the part after its second $. "
                    "Copy the whole text, or type the code printed with your eSIM."
                ),
            )


class BuyForm(forms.Form):
    """One add-on's order. Whether the line's plan offers it is the service's to say."""

    add_on = forms.ModelChoiceField(queryset=AddOn.objects.all())
    idempotency_key = forms.UUIDField()
