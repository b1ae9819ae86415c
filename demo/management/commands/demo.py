from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from demo.personas import (
    DEMO_PASSWORD,
    FAMILY,
    PERSONAS,
    UNCLAIMED_CODE,
    demo_family_create,
    demo_gifts_create,
    demo_history_fill,
    demo_operator_create,
    demo_persona_create,
    demo_unclaimed_line_create,
)
from usage.simulator import floor_to_minute, slots


class Command(BaseCommand):
    help = "Creates the demo personas with 60 days of usage history; run again, it adds only what is missing."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=settings.SIMULATOR_SEED)

    def handle(self, *args, seed: int, **options):
        now = timezone.now()
        demo_operator_create()
        simulations = [demo_persona_create(persona, now=now) for persona in PERSONAS]
        family_trip = next(s for s in simulations if s.profile == "family_trip")
        simulations += demo_family_create(family_trip, now=now)
        total_slots = sum(
            sum(1 for _ in slots(simulation.simulated_until, floor_to_minute(now)))
            for simulation in simulations
        )
        new = 0
        with tqdm(total=total_slots, unit="slot", desc="Usage history", disable=total_slots == 0) as bar:
            for simulation in simulations:
                new += demo_history_fill(simulation, now=now, seed=seed, progress=bar.update)
        unclaimed = demo_unclaimed_line_create(now=now)
        for skipped in demo_gifts_create(now=timezone.now()):
            self.stdout.write(self.style.WARNING(f"A demo gift was skipped: {skipped}"))
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {new} new usage records."))
        self.stdout.write(
            "Sign in as "
            + ", ".join([p.username for p in PERSONAS] + [f.username for f in FAMILY])
            + f" or operator (admin); password {DEMO_PASSWORD}"
        )
        if unclaimed.owner_id is None:
            self.stdout.write(
                f"Try adding a line at /lines/add/: ICCID {unclaimed.iccid}, activation code {UNCLAIMED_CODE}"
            )
