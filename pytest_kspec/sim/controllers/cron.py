"""Standard 5-field cron schedules (minute hour day-of-month month day-of-week) as CronJobs
use them, with the ``@hourly``-style macros, names (``jan``, ``mon``), ranges, steps and lists;
times are epoch seconds, evaluated in ``spec.timeZone`` (UTC by default).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@hourly": "0 * * * *"}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_LIMIT = 366 * 24 * 60 * 5  # minutes searched before a schedule is taken as never firing


class CronError(ValueError):
    """A schedule that is not valid cron."""


def _field(text: str, low: int, high: int, names: list[str] | None = None) -> set[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"bad step in {text!r}")
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high + (1 if names is DAYS else 0)):
            raise CronError(f"{text!r} is out of range {low}-{high}")
        out.update(range(start, end + 1, step))
    if names is DAYS and 7 in out:
        out.discard(7)
        out.add(0)
    return out


def _value(text: str, names: list[str] | None) -> int:
    if names is not None and text[:3] in names:
        return names.index(text[:3]) + (1 if names is MONTHS else 0)
    if not text.isdigit():
        raise CronError(f"{text!r} is not a number")
    return int(text)


class Schedule:
    def __init__(self, text: str, time_zone: object = None) -> None:
        text = text.strip()
        if text.upper().startswith(("TZ=", "CRON_TZ=")):
            zone, _, text = text.partition(" ")
            time_zone = zone.split("=", 1)[1]
        fields = MACROS.get(text, text).split()
        if len(fields) != 5:
            raise CronError(f"expected 5 fields, got {text!r}")
        self.minutes = _field(fields[0], 0, 59)
        self.hours = _field(fields[1], 0, 23)
        self.days = _field(fields[2], 1, 31)
        self.months = _field(fields[3], 1, 12, MONTHS)
        self.weekdays = _field(fields[4], 0, 6, DAYS)
        self.any_day = fields[2] in ("*", "?")
        self.any_weekday = fields[4] in ("*", "?")
        try:
            self.tz: tzinfo = ZoneInfo(str(time_zone)) if time_zone else UTC
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise CronError(f"unknown time zone {time_zone!r}") from e

    def _matches(self, t: datetime) -> bool:
        if t.minute not in self.minutes or t.hour not in self.hours \
                or t.month not in self.months:
            return False
        day_ok = t.day in self.days
        weekday_ok = (t.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok  # both restricted: either matches, as cron does

    def next_after(self, when: float) -> float | None:
        """The first scheduled time strictly after ``when`` (epoch seconds)."""
        t = datetime.fromtimestamp(when, tz=self.tz).replace(second=0, microsecond=0)
        for _ in range(_LIMIT):
            t = t + timedelta(minutes=1)
            if self._matches(t):
                return t.timestamp()
        return None

    def latest(self, after: float, until: float) -> float | None:
        """The last scheduled time in (after, until], or None."""
        found = None
        t = self.next_after(after)
        while t is not None and t <= until:
            found = t
            t = self.next_after(t)
        return found
