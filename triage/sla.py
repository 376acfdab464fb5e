"""SLA deadlines (办理时限) and the 督办 supervision chain, read from a city-editable YAML file (corpora/sla.yaml).

One job: turn "urgent, 燃气供应, received at t" into ``{accept_by, reply_by}``, and say how much working time lies
between two instants, so the scheduler in `triage.lifecycle` can tell when an overdue ticket climbs one level up the
escalation chain (街道/乡镇 → 区县 → 市).

Durations in the YAML are written ``"30m"``, ``"2h"``, ``"1d"`` (wall-clock time: nights, weekends and holidays
count, because a gas leak does not wait for Monday) or ``"1wd"`` / ``"4wh"`` (working days 工作日 / working hours:
only working time counts). A working day is a weekday that is not a public holiday (法定节假日), or a weekend day the
State Council made a make-up workday (调休上班). Working time is the whole of every working day, or only the
configured office hours (e.g. 09:00–17:30) when ``working_hours`` is set. "N working days" means N whole working days
of working time: received Friday 10:00, ``1wd`` is due Monday 10:00; received on a Saturday, due at the end of Monday.

China has kept a single UTC offset (+08:00) without summer time since 1991, so the calendar uses a fixed offset, which
also lets the scheduler work on numpy arrays of epoch seconds. Datetimes in and out are timezone-aware. Nothing here
reads the clock: callers pass ``received_at`` and ``now``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from triage.errors import DataError, InvalidInput

__all__ = ["Duration", "WorkingCalendar", "SlaRule", "Deadlines", "EscalationLevel", "SlaPolicy", "epoch_seconds"]

log = logging.getLogger(__name__)

_SECONDS_PER_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d|wd|wh)\s*$")
_WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


def epoch_seconds(moment: datetime, *, field_name: str = "at") -> float:
    """Seconds since 1970-01-01 UTC of an aware datetime; a naive one is refused (its zone would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{field_name} must be timezone-aware (e.g. 2026-11-25T09:30:00+08:00), got {moment!r}",
                           field=field_name)
    return moment.timestamp()


@dataclass(frozen=True)
class Duration:
    """A span of time: ``seconds`` of wall-clock time, or of working time when ``working`` is true."""

    seconds: float
    working: bool = False
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"{self.seconds:g}s{' working' if self.working else ''}"


class WorkingCalendar:
    """Which local days are working days (工作日), and how much working time lies between two instants.

    Working time is measured by a cumulative clock W(t): working seconds since ``first_day``. W is piecewise linear and
    precomputed per day, so both W and its inverse run on whole numpy arrays (the scheduler's 100,000 tickets).
    """

    def __init__(
        self,
        *,
        holidays: Iterable[date] = (),
        makeup_workdays: Iterable[date] = (),
        weekend: Sequence[int] = (6, 7),
        working_hours: tuple[time, time] | None = None,
        utc_offset_hours: float = 8.0,
        published_years: Iterable[int] | None = None,
        first_day: date = date(2000, 1, 1),
        last_day: date = date(2100, 12, 31),
    ):
        self.holidays = frozenset(holidays)
        self.makeup_workdays = frozenset(makeup_workdays)
        self.weekend = tuple(weekend)
        self.working_hours = working_hours
        self.utc_offset_hours = utc_offset_hours
        self.published_years = frozenset(published_years) if published_years is not None else None
        self.first_day = first_day
        self.last_day = last_day
        clash = self.holidays & self.makeup_workdays
        if clash:
            raise DataError(f"days listed both as holiday and as make-up workday: {sorted(clash)}")
        self.tz = timezone(timedelta(hours=utc_offset_hours))
        self._offset = utc_offset_hours * 3600.0
        if working_hours is None:
            self._day_start, self._day_end = 0.0, float(_SECONDS_PER_DAY)
        else:
            self._day_start = working_hours[0].hour * 3600.0 + working_hours[0].minute * 60.0
            self._day_end = working_hours[1].hour * 3600.0 + working_hours[1].minute * 60.0
            if self._day_end <= self._day_start:
                raise DataError(f"working_hours must end after they start, got {working_hours}")
        ordinals = np.arange(first_day.toordinal(), last_day.toordinal() + 1)
        iso_weekday = (ordinals - 1) % 7 + 1  # ordinal 1 (0001-01-01) was a Monday
        working = ~np.isin(iso_weekday, self.weekend)
        for day, value in [(d, False) for d in self.holidays] + [(d, True) for d in self.makeup_workdays]:
            if first_day <= day <= last_day:
                working[day.toordinal() - first_day.toordinal()] = value
        self._working = working
        self._cum = np.concatenate([[0.0], np.cumsum(working * self.working_day_seconds)])
        self._first_epoch_day = first_day.toordinal() - _EPOCH_ORDINAL

    @property
    def working_day_seconds(self) -> float:
        """Length of working time in one working day (86,400 s without office hours)."""
        return self._day_end - self._day_start

    @property
    def covered_years(self) -> frozenset[int]:
        """Years whose holidays are fully entered (``published_years``; by default every year with an entry)."""
        if self.published_years is not None:
            return self.published_years
        return frozenset(d.year for d in self.holidays | self.makeup_workdays)

    def is_working_day(self, day: date) -> bool:
        return bool(self._working[self._day_index(np.array([day.toordinal() - _EPOCH_ORDINAL]))[0]])

    def working_clock(self, epoch: np.ndarray) -> np.ndarray:
        """W(t) for an array of epoch seconds: working seconds elapsed since the calendar's first day."""
        local = np.asarray(epoch, dtype=np.float64) + self._offset
        epoch_day = np.floor(local / _SECONDS_PER_DAY)
        index = self._day_index(epoch_day.astype(np.int64))
        within = np.clip(local - epoch_day * _SECONDS_PER_DAY - self._day_start, 0.0, self.working_day_seconds)
        return self._cum[index] + np.where(self._working[index], within, 0.0)

    def from_working_clock(self, clock: np.ndarray) -> np.ndarray:
        """Inverse of `working_clock`: the earliest epoch second at which W reaches each value."""
        clock = np.asarray(clock, dtype=np.float64)
        index = np.searchsorted(self._cum[1:], clock, side="left")
        if np.any(index >= len(self._working)):
            raise InvalidInput(f"a deadline falls after the calendar's last day {self.last_day}")
        local = (self._first_epoch_day + index) * float(_SECONDS_PER_DAY) + self._day_start + (clock - self._cum[index])
        return local - self._offset

    def add(self, start: datetime, duration: Duration) -> datetime:
        """``start`` plus ``duration``, in the calendar's zone; working durations skip non-working time."""
        start_s = epoch_seconds(start, field_name="start")
        if not duration.working:  # exact datetime arithmetic, no float round trip
            return (start + timedelta(seconds=duration.seconds)).astimezone(self.tz)
        end_s = self.add_seconds(np.array([start_s]), np.array([duration.seconds]), np.array([True]))[0]
        return datetime.fromtimestamp(float(end_s), tz=self.tz)

    def add_seconds(self, start: np.ndarray, seconds: np.ndarray, working: np.ndarray) -> np.ndarray:
        """Batch `add` on epoch seconds: ``start + seconds`` of wall-clock time, or of working time where
        ``working``. Never earlier than ``start``."""
        start = np.asarray(start, dtype=np.float64)
        seconds = np.asarray(seconds, dtype=np.float64)
        working = np.asarray(working, dtype=bool)
        end = start + seconds
        if working.any():
            shifted = self.from_working_clock(self.working_clock(start[working]) + seconds[working])
            end[working] = np.maximum(start[working], shifted)
        return end

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        ends = [epoch_seconds(start, field_name="start"), epoch_seconds(end, field_name="end")]
        clock = self.working_clock(np.array(ends))
        return float(clock[1] - clock[0])

    def _day_index(self, epoch_day: np.ndarray) -> np.ndarray:
        index = epoch_day - self._first_epoch_day
        if index.size and (index.min() < 0 or index.max() >= len(self._working)):
            raise InvalidInput(f"a time falls outside the working calendar ({self.first_day} … {self.last_day})")
        return index


@dataclass(frozen=True)
class SlaRule:
    """Time allowed to accept (签收) and to reply (办结答复), both counted from reception."""

    accept: Duration
    reply: Duration


@dataclass(frozen=True)
class Deadlines:
    accept_by: datetime
    reply_by: datetime


@dataclass(frozen=True)
class EscalationLevel:
    """One rung of the 督办 chain. ``after[urgency]`` is how long an overdue ticket waits (since its missed deadline,
    or since its previous escalation) before it is escalated to this level; the bottom level has none."""

    name: str
    aliases: frozenset[str] = frozenset()
    after: Mapping[str, Duration] = field(default_factory=dict)


class SlaPolicy:
    """Deadlines per urgency and category, the working calendar, and the escalation chain of one city.

    Build it with `SlaPolicy.load(path)` (default ``corpora/sla.yaml``). A category rule overrides the default rule
    of its urgency field by field; the category may be a taxonomy path and the most specific level that has a rule
    wins (``["城乡建设", "城市建设和市政管理", "燃气供应"]`` takes the 燃气供应 rule).
    """

    def __init__(
        self,
        *,
        calendar: WorkingCalendar,
        default: Mapping[str, SlaRule],
        categories: Mapping[str, Mapping[str, SlaRule]],
        levels: Sequence[EscalationLevel],
        source: str | None = None,
    ):
        self.calendar = calendar
        self.default = dict(default)
        self.categories = {name: dict(rules) for name, rules in categories.items()}
        self.levels = tuple(levels)
        self.source = source
        if not self.levels:
            raise DataError("the escalation chain needs at least one level", field="escalation")
        self._level_index: dict[str, int] = {}
        for index, level in enumerate(self.levels):
            for name in {level.name, *level.aliases}:
                self._level_index[name] = index
        self._warned_years: set[int] = set()

    @property
    def urgencies(self) -> tuple[str, ...]:
        return tuple(self.default)

    # ----------------------------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, path: str | Path | None = None) -> "SlaPolicy":
        """Read a policy file; ``None`` reads ``sla.yaml`` in the configured corpora directory."""
        if path is None:
            from triage.settings import get_settings

            path = get_settings().corpora_dir / "sla.yaml"
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise DataError(f"cannot read SLA policy {path}: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> "SlaPolicy":
        if not isinstance(data, Mapping):
            raise DataError("an SLA policy must be a mapping with calendar, default, categories, escalation")
        calendar = _calendar_from_dict(data.get("calendar") or {})
        default = {str(u): _rule(r, None, calendar, f"default.{u}") for u, r in (data.get("default") or {}).items()}
        if not default:
            raise DataError("the SLA policy needs default rules per urgency (normal, urgent)", field="default")
        categories: dict[str, dict[str, SlaRule]] = {}
        for name, per_urgency in (data.get("categories") or {}).items():
            unknown = set(per_urgency or {}) - set(default)
            if unknown:
                raise DataError(f"category {name}: unknown urgency {sorted(unknown)}", field=f"categories.{name}")
            categories[str(name)] = {
                u: _rule((per_urgency or {}).get(u) or {}, default[u], calendar, f"categories.{name}.{u}")
                for u in default
            }
        levels = []
        for position, entry in enumerate((data.get("escalation") or {}).get("levels") or []):
            after = entry.get("after")
            if position == 0 and after:
                raise DataError("the first escalation level is where tickets start: it takes no 'after'")
            if position > 0:
                if not isinstance(after, Mapping):
                    after = {u: after for u in default}
                missing = set(default) - set(after)
                if missing:
                    raise DataError(f"escalation level {entry.get('name')}: no delay for {sorted(missing)}")
                after = {u: _duration(after[u], calendar, f"escalation.{entry.get('name')}.{u}") for u in default}
            aliases = frozenset(map(str, entry.get("aliases") or []))
            levels.append(EscalationLevel(str(entry["name"]), aliases, after or {}))
        return cls(calendar=calendar, default=default, categories=categories, levels=levels, source=source)

    # ----------------------------------------------------------------------------------------------- queries

    def rule(self, urgency: str, category: str | Sequence[str] | None = None) -> SlaRule:
        urgency = getattr(urgency, "value", urgency)
        if urgency not in self.default:
            raise InvalidInput(f"unknown urgency {urgency!r}; expected one of {list(self.default)}", field="urgency")
        path = [category] if isinstance(category, str) else list(category or [])
        for name in reversed(path):
            if name in self.categories:
                return self.categories[name][urgency]
        return self.default[urgency]

    def deadlines(self, urgency: str, category: str | Sequence[str] | None, received_at: datetime) -> Deadlines:
        """Accept-by and reply-by for a ticket received at ``received_at`` (also used when a clock restarts)."""
        rule = self.rule(urgency, category)
        accept_by = self.calendar.add(received_at, rule.accept)
        reply_by = self.calendar.add(received_at, rule.reply)
        self._warn_uncovered([reply_by.year])
        return Deadlines(accept_by=accept_by, reply_by=reply_by)

    def deadlines_batch(
        self,
        urgencies: Sequence[str],
        categories: Sequence[str | Sequence[str] | None],
        received_at: Sequence[datetime],
    ) -> list[Deadlines]:
        """`deadlines` for many tickets at once (back-fills, or re-deriving open tickets after the YAML changed)."""
        if not len(urgencies) == len(categories) == len(received_at):
            raise InvalidInput("urgencies, categories and received_at must have the same length")
        rules_seen: dict[tuple, SlaRule] = {}
        rules = []
        for urgency, category in zip(urgencies, categories):
            key = (getattr(urgency, "value", urgency), category if isinstance(category, str) or category is None
                   else tuple(category))
            if key not in rules_seen:
                rules_seen[key] = self.rule(*key)
            rules.append(rules_seen[key])
        start = np.array([epoch_seconds(t, field_name="received_at") for t in received_at], dtype=np.float64)
        accept = self.calendar.add_seconds(start, np.array([r.accept.seconds for r in rules]),
                                           np.array([r.accept.working for r in rules], dtype=bool))
        reply = self.calendar.add_seconds(start, np.array([r.reply.seconds for r in rules]),
                                          np.array([r.reply.working for r in rules], dtype=bool))
        tz = self.calendar.tz
        out = [Deadlines(datetime.fromtimestamp(a, tz=tz), datetime.fromtimestamp(r, tz=tz))
               for a, r in zip(accept.tolist(), reply.tolist())]
        self._warn_uncovered({d.reply_by.year for d in out})
        return out

    def level_index(self, level: str | None) -> int:
        """Position of a level name (or alias) in the chain; ``None`` is the bottom level."""
        if level is None:
            return 0
        try:
            return self._level_index[level]
        except KeyError:
            raise InvalidInput(f"unknown level {level!r}; the chain is {[lv.name for lv in self.levels]}",
                               field="level") from None

    def _warn_uncovered(self, years: Iterable[int]) -> None:
        for year in years:
            if year not in self.calendar.covered_years and year not in self._warned_years:
                self._warned_years.add(year)
                log.warning("SLA calendar has no public holidays for %s: deadlines there skip weekends only "
                            "(add the year to %s)", year, self.source or "the SLA policy")


# -------------------------------------------------------------------------------------------------- parsing


def _duration(value: Any, calendar: WorkingCalendar, where: str) -> Duration:
    match = _DURATION.match(str(value))
    if not match:
        raise DataError(f"{where}: cannot read duration {value!r} (write e.g. 30m, 2h, 1d, 1wd, 4wh)", field=where)
    amount, unit = float(match.group(1)), match.group(2)
    if amount <= 0:
        raise DataError(f"{where}: a duration must be positive, got {value!r}", field=where)
    seconds = {"m": 60.0, "h": 3600.0, "d": 86400.0, "wh": 3600.0, "wd": calendar.working_day_seconds}[unit] * amount
    return Duration(seconds=seconds, working=unit in ("wd", "wh"), text=str(value).strip())


def _rule(entry: Mapping[str, Any], base: SlaRule | None, calendar: WorkingCalendar, where: str) -> SlaRule:
    if base is None and not {"accept", "reply"} <= set(entry or {}):
        raise DataError(f"{where}: needs both 'accept' and 'reply'", field=where)
    accept = _duration(entry["accept"], calendar, f"{where}.accept") if "accept" in entry else base.accept
    reply = _duration(entry["reply"], calendar, f"{where}.reply") if "reply" in entry else base.reply
    if reply.seconds < accept.seconds and reply.working == accept.working:
        raise DataError(f"{where}: reply deadline ({reply}) is shorter than accept deadline ({accept})", field=where)
    return SlaRule(accept=accept, reply=reply)


def _days(value: Any, where: str) -> list[date]:
    """A date, a 'YYYY-MM-DD..YYYY-MM-DD' range, or a list of either."""
    if isinstance(value, list):
        return [d for item in value for d in _days(item, where)]
    if isinstance(value, date):
        return [value]
    text = str(value)
    try:
        if ".." in text:
            first, last = (date.fromisoformat(part.strip()) for part in text.split(".."))
            if last < first:
                raise ValueError("range ends before it starts")
            return [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return [date.fromisoformat(text.strip())]
    except ValueError as exc:
        raise DataError(f"{where}: cannot read date {value!r} ({exc})", field=where) from exc


def _calendar_from_dict(data: Mapping[str, Any]) -> WorkingCalendar:
    holidays: list[date] = []
    workdays: list[date] = []
    for entry in data.get("holidays") or []:
        where = f"calendar.holidays.{entry.get('name', '?')}"
        unknown = set(entry) - {"name", "days_off", "workdays"}
        if unknown:  # also catches YAML 1.1 turning a bare `off:` key into False
            raise DataError(f"{where}: unknown keys {sorted(map(str, unknown))}; use name, days_off, workdays",
                            field=where)
        holidays += _days(entry.get("days_off") or [], where)
        workdays += _days(entry.get("workdays") or [], where)
    weekend = [d if isinstance(d, int) else _WEEKDAYS.get(str(d).lower()[:3]) for d in data.get("weekend", ["sat", "sun"])]
    if None in weekend:
        raise DataError(f"calendar.weekend: use day names mon … sun, got {data.get('weekend')}", field="calendar.weekend")
    hours = data.get("working_hours")
    working_hours = None
    if hours:
        try:
            working_hours = (time.fromisoformat(str(hours["start"])), time.fromisoformat(str(hours["end"])))
        except (KeyError, ValueError) as exc:
            raise DataError(f"calendar.working_hours: need start and end as HH:MM ({exc})") from exc
    return WorkingCalendar(
        holidays=holidays,
        makeup_workdays=workdays,
        weekend=weekend,
        working_hours=working_hours,
        utc_offset_hours=float(data.get("utc_offset_hours", 8)),
        published_years=[int(y) for y in data["published_years"]] if "published_years" in data else None,
    )
