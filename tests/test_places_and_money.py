"""Countries, time zones and yen read as the reader's language writes them."""

import pytest
from django.utils import translation

from esimdash.places import country_name, time_zone_choices
from esimdash.units import yen


@pytest.mark.parametrize(
    ("language", "country", "zone", "price"),
    [
        ("en", "Japan", "United States (Los Angeles) Time", "¥2,000"),
        ("zh-hans", "日本", "美国（洛杉矶）时间", "¥2,000"),
        ("ja", "日本", "アメリカ合衆国（ロサンゼルス）時間", "¥2,000"),
    ],
)
def test_in_the_readers_language(language, country, zone, price):
    with translation.override(language):
        assert country_name("JP") == country
        assert country_name("jp") == country
        assert dict(time_zone_choices())["America/Los_Angeles"] == zone
        assert dict(time_zone_choices())["Etc/GMT+5"] == "GMT+5"
        assert yen(2000) == price
        assert yen(1234567) == "¥1,234,567"


def test_a_code_cldr_does_not_know_stays_as_it_is():
    with translation.override("zh-hans"):
        assert country_name("XX") == "XX"
