from celery import shared_task
from django.utils import timezone

from family import gifts


@shared_task(time_limit=120, soft_time_limit=100)
def gift_codes_expire() -> int:
    """Beat, every minute: gift codes past their time give their data back to the sender. Safe to
    run twice: each gift is claimed under its row lock."""
    return gifts.gift_codes_expire(at=timezone.now())
