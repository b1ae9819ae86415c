"""Data units, defined once: decimal, as carriers sell them (1 GB = 1,000 MB = 10^9 bytes). Also the
template filters that show bytes as MB and GB (`{% load data_units %}`)."""

from babel.numbers import format_decimal
from django import template
from django.utils.formats import number_format

from esimdash.places import reader_locale

KB = 10**3
MB = 10**6
GB = 10**9

register = template.Library()

_UNITS = ((GB, "GB"), (MB, "MB"), (KB, "KB"))


@register.filter
def data_size(value: int | None) -> str:
    """12.34 GB, 850 MB, 12 KB: three significant figures at most, in the active locale."""
    if value is None:
        return ""
    for size, unit in _UNITS:
        if abs(value) >= size:
            amount = value / size
            decimals = 2 if amount < 10 else 1 if amount < 100 else 0
            return f"{number_format(round(amount, decimals), decimals)} {unit}"
    return f"{value} B"


@register.filter
def percent_of(part: int, whole: int) -> int:
    """Whole percent, for labels; 0 when there is nothing to divide."""
    return round(100 * part / whole) if whole else 0


@register.filter
def yen(value: int) -> str:
    """¥1,234: whole yen, grouped by thousands as CLDR groups them for the active language (Django's
    zh-Hans formats do not group at all: ¥2000)."""
    return f"¥{format_decimal(value, format='#,##0', locale=reader_locale())}"


@register.filter
def gigabytes(value: int) -> str:
    """A form field's value in GB, plain digits (no locale grouping): 1000000000 -> "1", 1.5 GB -> "1.5"."""
    return f"{value / GB:.3f}".rstrip("0").rstrip(".")
