import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from usage.simulator import usage_simulate


class Command(BaseCommand):
    help = "Adds the demo personas' simulated usage up to now (every minute with --loop)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=settings.SIMULATOR_SEED)
        parser.add_argument("--loop", action="store_true", help="keep running, once a minute, until Ctrl-C")

    def handle(self, *args, seed: int, loop: bool, **options):
        while True:
            result = usage_simulate(until=timezone.now(), seed=seed)
            self.stdout.write(f"{timezone.now():%H:%M:%S} simulated {result.new} new records")
            if not loop:
                return
            time.sleep(60)
