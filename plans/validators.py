"""Validators for the identifiers printed on an eSIM: ICCID, EID and the line's phone number.

The check-digit arithmetic comes from python-stdnum and the numbering plans from phonenumbers."""

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum import luhn
from stdnum.iso7064 import mod_97_10

_DIGITS = re.compile(r"[0-9]+")


def validate_iccid(value: str) -> None:
    """ICCID (ITU-T E.118): 19 or 20 digits starting 89 (telecoms), ending in a Luhn check digit."""
    if not _DIGITS.fullmatch(value):
        raise ValidationError(_("An ICCID has digits only."), code="iccid_digits")
    if len(value) not in (19, 20):
        raise ValidationError(
            _("An ICCID has 19 or 20 digits; this one has %(count)d."),
            code="iccid_length",
            params={"count": len(value)},
        )
    if not value.startswith("89"):
        raise ValidationError(_("An ICCID starts with 89."), code="iccid_prefix")
    if not luhn.is_valid(value):
        raise ValidationError(_("The ICCID's check digit is wrong: check for a typo."), code="iccid_check")


def validate_eid(value: str) -> None:
    """EID (GSMA SGP.29): 32 digits whose last two are ISO 7064 mod 97-10 check digits."""
    if not _DIGITS.fullmatch(value) or len(value) != 32:
        raise ValidationError(_("An EID has exactly 32 digits."), code="eid_length")
    if not mod_97_10.is_valid(value):
        raise ValidationError(_("The EID's check digits are wrong: check for a typo."), code="eid_check")


def validate_e164(value: str) -> None:
    """A phone number written in E.164: '+', the country code, the national number, no spaces."""
    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", value):
        raise ValidationError(
            _("Write the phone number in international form, like +819012345678."), code="e164_format"
        )
    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException as error:
        raise ValidationError(_("This is not a phone number."), code="e164_parse") from error
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(_("No phone number exists with these digits."), code="e164_invalid")
