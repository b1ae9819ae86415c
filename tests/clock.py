"""The calendar test lines live on, from the environment of the run.

`make test` runs the suite today and again at fixed instants with every process's clock moved
(`make test-clocks`); some of those runs also put the lines in another time zone or start their
billing cycles on another day, so that the lines under test really cross a daylight-saving change or
a SoftBank-style cycle boundary at that instant. The factories take their defaults from here:

- `TEST_TIME_ZONE`: the time zone of test users, and so of their lines (default Asia/Tokyo, the
  product's default);
- `TEST_CYCLE_START_DAY`: the day of the month test lines' billing cycles start on (default 1).

A test that asserts figures for one zone or cycle day says so with `pytest.mark.calendar` or passes
them to the factories."""

import datetime as dt
import os
import zoneinfo

TIME_ZONE = os.environ.get("TEST_TIME_ZONE") or "Asia/Tokyo"
CYCLE_START_DAY = int(os.environ.get("TEST_CYCLE_START_DAY") or 1)
zoneinfo.ZoneInfo(TIME_ZONE)  # a zone that does not exist fails the run at once


def mid_cycle() -> dt.datetime:
    """Noon two weeks into a billing cycle of the run's calendar (the one from November 2026), far
    from any cycle, day or month boundary: where a test's figures need 'now' to be an ordinary
    moment, it runs then."""
    cycle_starts_on = dt.date(2026, 11, min(CYCLE_START_DAY, 30))  # a later day starts on November's last
    return dt.datetime.combine(
        cycle_starts_on + dt.timedelta(days=14), dt.time(12), tzinfo=zoneinfo.ZoneInfo(TIME_ZONE)
    )
