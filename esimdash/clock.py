"""Where hours and local days begin: the one definition every app uses (the rollups' buckets, the
fair-use day, the alert windows, the charts).

Local midnights come back in the given zone, so adding a timedelta to one adds wall-clock time;
convert to UTC first to add elapsed time."""

import datetime as dt


def hour_floor(moment: dt.datetime) -> dt.datetime:
    """The start of `moment`'s hour, in UTC: an hourly rollup's bucket."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The local midnight that starts `day` in `tz`."""
    return dt.datetime.combine(day, dt.time(), tzinfo=tz)


def local_midnight(moment: dt.datetime, tz: dt.tzinfo, *, days: int = 0) -> dt.datetime:
    """The local midnight that starts `moment`'s day in `tz`, or `days` days later (1: the next
    midnight). Calendar arithmetic on the local date, so days of 23 or 25 hours come out right."""
    return midnight(moment.astimezone(tz).date() + dt.timedelta(days=days), tz)
