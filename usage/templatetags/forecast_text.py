"""`{% load forecast_text %}`: the forecast in words, as notices say it (usage.forecast)."""

from django import template

from usage.forecast import Forecast, forecast_sentences

register = template.Library()


@register.simple_tag
def forecast_words(forecast: Forecast) -> tuple[str, str]:
    return forecast_sentences(forecast)
