"""Checks on text people type and others read: names of pools, lines, devices and rules."""

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Bidirectional embeddings, overrides and isolates: they make a name read backwards or hide
# part of it ("Trojan Source"). Marks (U+200E, U+200F) and joiners (emoji) stay allowed.
_BIDI_CONTROLS = frozenset(chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def _is_control(character: str) -> bool:
    return unicodedata.category(character) == "Cc" or character in _BIDI_CONTROLS


def without_control_characters(value: str) -> str:
    """The name with a space for each character `validate_name` refuses (for names stored before)."""
    return "".join(" " if _is_control(character) else character for character in value).strip()


def validate_name(value: str) -> None:
    """Refuses control characters (line breaks, tabs, C0 and C1) and bidirectional overrides: a
    name goes into pages, e-mail subjects and notices, where they break lines or disguise text."""
    for character in value:
        if _is_control(character):
            raise ValidationError(
                _("Names cannot hold line breaks, tabs or other control characters (found %(code)s)."),
                code="control_character",
                params={"code": f"U+{ord(character):04X}"},
            )
