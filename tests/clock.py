"""The calendar test lines live on, from the environment of the run.

`make test` runs the suite today and again at fixed instants with every process's clock moved
(`make test-clocks`); some of those runs also put the lines in another time zone or start their
billing cycles on another day, so that the lines under test really cross a daylight-saving change or
a SoftBank-style cycle boundary at that instant. The factories take their defaults from here:

- `TEST_TIME_ZONE`: the time zone of test users, and so of their lines (default Asia/Tokyo, the
  product's default);
- `TEST_CYCLE_START_DAY`: the day of the month test lines' billing cycles start on (default 1).

A test that asserts figures for one zone or cycle day passes it explicitly."""

import os
import zoneinfo

TIME_ZONE = os.environ.get("TEST_TIME_ZONE") or "Asia/Tokyo"
CYCLE_START_DAY = int(os.environ.get("TEST_CYCLE_START_DAY") or 1)
TZ = zoneinfo.ZoneInfo(TIME_ZONE)  # fails the run at once on a zone that does not exist
