"""Countries and time zones named in the reader's language, from the CLDR data Babel ships."""

import zoneinfo
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.dates import get_timezone_location
from django import template
from django.utils import translation

register = template.Library()


@cache
def _locale(language: str) -> Locale:
    """Babel's locale for a Django language code ("zh-hans" → zh_Hans); English when unknown."""
    try:
        return Locale.parse(translation.to_locale(language))
    except (UnknownLocaleError, ValueError):
        return Locale("en")


def reader_locale() -> Locale:
    """Babel's locale for the active language."""
    return _locale(translation.get_language() or "en")


@register.filter
def country_name(code: str) -> str:
    """'JP' → 日本 / 日本 / Japan in the active language; the code itself when CLDR has no name."""
    return reader_locale().territories.get((code or "").upper(), code)


@cache
def _time_zone_choices(language: str) -> list[tuple[str, str]]:
    locale = _locale(language)
    return [(zone, _time_zone_label(zone, locale)) for zone in sorted(zoneinfo.available_timezones())]


def _time_zone_label(zone: str, locale: Locale) -> str:
    # "Etc/GMT+5" and "UTC" have no place: their city form is the offset's own name.
    if zone.startswith("Etc/") or "/" not in zone:
        return get_timezone_location(zone, locale=locale, return_city=True)
    return get_timezone_location(zone, locale=locale)


def time_zone_choices() -> list[tuple[str, str]]:
    """Every time zone, labelled in the active language, as a place ("United States (Los Angeles) Time")."""
    return _time_zone_choices(translation.get_language() or "en")
