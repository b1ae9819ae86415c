"""A deterministic usage simulator for the demo.

It plays a persona's habits (an app mix with a day and night rhythm, hotspot sessions, trips
abroad, a background backup at 3 a.m.) and writes through `usage_ingest`, the path real usage
takes. Every slot of time draws from a random generator seeded by (seed, ICCID, slot), so the same
seed gives the same records whenever and however often it runs, and a re-run adds nothing."""

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import transaction

from esimdash.units import MB
from plans.models import Line
from usage.models import AppCategory, Device, SimulatedLine
from usage.services import IngestResult, UsageRecordIn, usage_ingest

SOURCE = "simulator"
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
# Roaming partners' networks, by country (SK Telecom, Chunghwa Telecom).
ROAMING_NETWORKS = {"KR": "450-05", "TW": "466-92"}


@dataclass(frozen=True)
class Habit:
    category: str
    daily_mb: float
    hours: tuple[int, ...]
    """Local hours of the day in which it happens, the daily volume spread evenly over them."""
    device_kind: str = Device.Kind.PHONE
    background: bool = False
    tethered: bool = False
    days_probability: float = 1.0
    """Share of days on which it happens at all."""


@dataclass(frozen=True)
class Profile:
    habits: tuple[Habit, ...]
    trip_countries: tuple[str, ...] = ()
    trip_weekly_chance: float = 0.0
    trip_days: int = 2


_DAYTIME = tuple(range(8, 24))
# Push notifications and sync trickle in around the clock, in the background.
_TRICKLE = Habit(AppCategory.MESSAGING, 6, tuple(range(24)), background=True)
PROFILES: dict[str, Profile] = {
    # Wang Ming: a student in Tokyo; his friend's iPad rides on his hotspot some evenings.
    "student": Profile(
        habits=(
            _TRICKLE,
            Habit(AppCategory.VIDEO, 190, (19, 20, 21, 22, 23)),
            Habit(AppCategory.SOCIAL, 110, (8, 12, 13, 18, 21, 22, 23)),
            Habit(AppCategory.MESSAGING, 25, _DAYTIME),
            Habit(AppCategory.MAPS, 30, (8, 9, 17, 18)),
            Habit(AppCategory.BROWSING, 45, (10, 12, 15, 20)),
            Habit(AppCategory.GAMES, 35, (13, 22)),
            Habit(AppCategory.SYSTEM_UPDATE, 400, (2,), background=True, days_probability=0.08),
            Habit(
                AppCategory.VIDEO, 550, (20, 21, 22), Device.Kind.TABLET, tethered=True, days_probability=0.15
            ),
        ),
    ),
    # Li Jing: video meetings every day, two days in Seoul now and then, and a photo backup that
    # burns data at 3 a.m.
    "consultant": Profile(
        habits=(
            _TRICKLE,
            Habit(AppCategory.VIDEO, 110, (10, 11, 14, 16)),
            Habit(AppCategory.MESSAGING, 30, _DAYTIME),
            Habit(AppCategory.SOCIAL, 35, (8, 12, 21, 22)),
            Habit(AppCategory.MAPS, 25, (9, 13, 18)),
            Habit(AppCategory.BROWSING, 35, (9, 13, 17, 20)),
            Habit(AppCategory.CLOUD_BACKUP, 380, (3,), background=True, days_probability=0.3),
        ),
        trip_countries=("KR",),
        trip_weekly_chance=0.25,
        trip_days=2,
    ),
    # Zhang Wei: a family road trip in Hokkaido; his phone shares a hotspot to the family tablet.
    "family_trip": Profile(
        habits=(
            _TRICKLE,
            Habit(AppCategory.MAPS, 140, (8, 9, 10, 11, 13, 14, 15, 16, 17)),
            Habit(AppCategory.VIDEO, 170, (20, 21, 22)),
            Habit(AppCategory.SOCIAL, 120, (8, 12, 19, 21, 22)),
            Habit(AppCategory.MESSAGING, 40, _DAYTIME),
            Habit(AppCategory.BROWSING, 60, (9, 12, 18, 20)),
            Habit(
                AppCategory.VIDEO,
                260,
                (10, 11, 14, 15, 16),
                Device.Kind.TABLET,
                tethered=True,
                days_probability=0.6,
            ),
            Habit(AppCategory.GAMES, 90, (13, 19), Device.Kind.TABLET, tethered=True, days_probability=0.5),
        ),
    ),
    # Zhang Wei's family in the pool: his wife (a manager), their son of 14 and daughter of 9.
    "family_parent": Profile(
        habits=(
            _TRICKLE,
            Habit(AppCategory.SOCIAL, 60, (8, 12, 21, 22)),
            Habit(AppCategory.MESSAGING, 30, _DAYTIME),
            Habit(AppCategory.MAPS, 25, (9, 15, 17)),
            Habit(AppCategory.BROWSING, 30, (10, 20)),
        ),
    ),
    "family_teen": Profile(
        habits=(
            _TRICKLE,
            Habit(AppCategory.VIDEO, 160, (16, 17, 20, 21, 22)),
            Habit(AppCategory.SOCIAL, 70, (7, 12, 18, 21)),
            Habit(AppCategory.GAMES, 50, (17, 19)),
        ),
    ),
    "family_child": Profile(
        habits=(
            _TRICKLE,
            Habit(AppCategory.VIDEO, 70, (16, 17, 18)),
            Habit(AppCategory.GAMES, 40, (15, 19)),
        ),
    ),
}


def _rng(seed: int, line: Line, *parts: object) -> random.Random:
    # Reproducible draws are the point here; nothing secret depends on them.
    return random.Random(  # noqa: S311
        "|".join(str(part) for part in (seed, line.iccid, *parts))
    )


def country_on(line: Line, profile: Profile, day: dt.date, seed: int) -> str:
    """Where the line is on a local day: at home, or on a trip that began this week or last."""
    for weeks_back in (0, 1):
        week_start = day - dt.timedelta(days=day.weekday() + 7 * weeks_back)
        rng = _rng(seed, line, "trip", week_start.isoformat())
        if profile.trip_countries and rng.random() < profile.trip_weekly_chance:
            trip_start = week_start + dt.timedelta(days=rng.randrange(7))
            if trip_start <= day < trip_start + dt.timedelta(days=profile.trip_days):
                return rng.choice(profile.trip_countries)
    return "JP"


def _home_network(line: Line) -> str:
    carrier = line.plan.carrier
    codes = carrier.network_codes or (carrier.host.network_codes if carrier.host else [])
    return codes[0] if codes else "440-10"


def simulate_slot(
    *, line: Line, profile: Profile, devices: dict[str, int], start: dt.datetime, minutes: int, seed: int
) -> list[UsageRecordIn]:
    """The records one line produces in one slot of time (an hour, or a minute when live)."""
    local = start.astimezone(line.tz)
    country = country_on(line, profile, local.date(), seed)
    network = _home_network(line) if country == "JP" else ROAMING_NETWORKS.get(country, "450-05")
    records = []
    for habit_number, habit in enumerate(profile.habits):
        device_id = devices.get(habit.device_kind)
        if local.hour not in habit.hours or device_id is None:
            continue
        day_rng = _rng(seed, line, "day", local.date().isoformat(), habit.category, habit.device_kind)
        if day_rng.random() >= habit.days_probability:
            continue
        day_factor = day_rng.uniform(0.5, 1.6)
        slot_rng = _rng(seed, line, start.isoformat(), minutes, habit.category, habit.device_kind)
        hourly_bytes = habit.daily_mb * MB / len(habit.hours) * day_factor
        total = int(hourly_bytes * minutes / 60 * slot_rng.lognormvariate(0, 0.35))
        if total < 1_000:
            continue
        upload_share = 0.35 if habit.category == AppCategory.CLOUD_BACKUP else slot_rng.uniform(0.05, 0.15)
        bytes_up = int(total * upload_share)
        records.append(
            UsageRecordIn(
                line_id=line.pk,
                device_id=device_id,
                period_start=start,
                period_end=start + dt.timedelta(minutes=minutes),
                bytes_up=bytes_up,
                bytes_down=total - bytes_up,
                country=country,
                network=network,
                app_category=habit.category,
                background=habit.background,
                tethered=habit.tethered,
                source=SOURCE,
                external_id=f"{line.iccid}-{start:%Y%m%dT%H%M}-{minutes}-{habit_number}",
            )
        )
    return records


def slots(since: dt.datetime, until: dt.datetime) -> Iterator[tuple[dt.datetime, int]]:
    """Whole hours while a whole hour fits, then whole minutes up to `until`: history stays at
    hourly rows while live usage arrives every minute."""
    cursor = since
    while cursor + MINUTE <= until:
        if cursor.minute == 0 and cursor.second == 0 and cursor + HOUR <= until:
            yield cursor, 60
            cursor += HOUR
        else:
            yield cursor, 1
            cursor += MINUTE


def floor_to_minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _owner_devices(line: Line) -> dict[str, int]:
    devices: dict[str, int] = {}
    for device in Device.objects.filter(owner_id=line.owner_id).order_by("created_at", "pk"):
        devices.setdefault(device.kind, device.pk)
    return devices


def simulate_line(
    simulation: SimulatedLine,
    *,
    until: dt.datetime,
    seed: int,
    batch_slots: int = 24,
    progress: Callable[[int], object] | None = None,
) -> IngestResult:
    """Brings one simulated line up to `until`, committing a day of hourly slots at a time so an
    interrupted run keeps what it wrote and resumes from there."""
    line = simulation.line
    profile = PROFILES[simulation.profile]
    devices = _owner_devices(line)
    new = duplicate = 0
    batch: list[tuple[dt.datetime, int]] = []
    pending = list(slots(simulation.simulated_until, floor_to_minute(until)))
    for index, slot in enumerate(pending, start=1):
        batch.append(slot)
        if len(batch) == batch_slots or index == len(pending):
            records = [
                record
                for start, minutes in batch
                for record in simulate_slot(
                    line=line, profile=profile, devices=devices, start=start, minutes=minutes, seed=seed
                )
            ]
            last_start, last_minutes = batch[-1]
            with transaction.atomic():
                result = usage_ingest(records=records)
                simulation.simulated_until = last_start + dt.timedelta(minutes=last_minutes)
                simulation.save(update_fields=["simulated_until"])
            new += result.new
            duplicate += result.duplicate
            if progress:
                progress(len(batch))
            batch = []
    return IngestResult(new=new, duplicate=duplicate)


def usage_simulate(*, until: dt.datetime, seed: int) -> IngestResult:
    """Brings every simulated line up to `until`."""
    new = duplicate = 0
    for simulation in SimulatedLine.objects.select_related("line__plan__carrier__host"):
        result = simulate_line(simulation, until=until, seed=seed)
        new += result.new
        duplicate += result.duplicate
    return IngestResult(new=new, duplicate=duplicate)
