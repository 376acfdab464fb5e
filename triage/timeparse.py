"""Resolve a Chinese time expression in a citizen's message to a date/time range (时间解析).

One job: `parse_when("昨天晚上八点半", now)` → `TimeRange(start=昨天 20:30, end=昨天 21:00, text="昨天晚上八点半")`.

What it reads (digits or Chinese numerals, 两/半/几 included):
- a day: 今天/昨天/前天/大前天/明天, 今早/昨晚/前晚; 上周三/这周五/本周日/上上周一/周二; 11月20日/号, 2026年11月20日,
  2026-11-20, 11/20, 去年3月5号; "20号下午" (a bare day number only next to a part of the day, so 58号 in an
  address is not a date); N天前 (三天前的晚上);
- a part of the day and a clock time on that day: 凌晨/早上/上午/中午/下午/傍晚/晚上/半夜 + 八点/八点半/8:30/十点一刻;
- an offset from now: 两个小时前, 十分钟前, 半个月前, 一个多月前, 两周前, 几天前;
- how long something has lasted: 坏了三天了, 已经一个多月 → from then until now;
- vague ranges: 刚才/刚刚, 最近/近期 (30 days), 这几天/这两天 (a week), 前几天, 上周, 上个月, 这个月, 去年, 今年;
- a few English phrases (yesterday, last night, 3 days ago), so an English message still yields a time.

Conventions, because the citizen reports something that already happened: a date without a year is the most recent
one not after tomorrow; a time of day without a date is the most recent past one; a clock time without a part of
the day is read as the most recent past of h and h+12 (and 1–5 o'clock with a date means afternoon). Ranges are
half-open [start, end): an hour "八点" is 20:00–21:00, "八点半" is 20:30–21:00, a day is 00:00–24:00, and a range
that contains `now` ends at `now`. Results keep the time zone of `now`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

try:  # cn2an reads compound numerals (二十三, 两百); the small table below covers the rest if it is missing.
    import cn2an as _cn2an
except ImportError:  # pragma: no cover - cn2an is a declared dependency
    _cn2an = None

from triage.text import normalize

__all__ = ["TimeRange", "parse_when", "PARTS_OF_DAY"]


@dataclass(frozen=True)
class TimeRange:
    """A resolved time: [start, end) plus the words it was read from."""

    start: datetime
    end: datetime
    text: str

    def as_dict(self) -> dict:
        """JSON-friendly form: {"text", "start", "end"} with ISO 8601 times."""
        return {"text": self.text, "start": self.start.isoformat(), "end": self.end.isoformat()}


# ------------------------------------------------------------------------------------------------- numbers

_NUM = r"(?:[0-9]{1,4}|[零〇一二两三四五六七八九十百]{1,4})"
_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def _num(text: str) -> int | None:
    """'8' / '八' / '二十三' / '两' → int; a 4-character year may be read digit by digit (二〇二六)."""
    if text.isdigit():
        return int(text)
    if len(text) == 4 and all(ch in _DIGIT for ch in text):
        return int("".join(str(_DIGIT[ch]) for ch in text))
    if _cn2an is not None:
        try:
            return int(_cn2an.cn2an(text.replace("〇", "零"), "smart"))
        except (ValueError, TypeError, KeyError):
            return None
    if len(text) == 1 and text in _DIGIT:
        return _DIGIT[text]
    if text.startswith("十"):
        text = "一" + text
    tens, _, ones = text.partition("十")
    if tens in _DIGIT and (not ones or ones in _DIGIT):
        return _DIGIT[tens] * 10 + (_DIGIT[ones] if ones else 0)
    return None


# ------------------------------------------------------------------------------------------------- patterns

_PERIODS: dict[str, tuple[int, int]] = {  # part of the day → (start hour, end hour); end may pass midnight
    "凌晨": (0, 6), "清晨": (5, 8), "一大早": (5, 9), "一早": (5, 9), "早上": (6, 9), "早晨": (6, 9), "早": (6, 9),
    "晨": (6, 9), "上午": (8, 12), "中午": (11, 13), "午后": (13, 15), "下午": (13, 18), "傍晚": (17, 19),
    "白天": (8, 18), "晚上": (18, 24), "晚间": (18, 24), "夜里": (20, 24), "夜间": (20, 24), "晚": (18, 24),
    "夜": (20, 24), "深夜": (22, 26), "半夜": (23, 27),
}
PARTS_OF_DAY = frozenset(_PERIODS)
_PM_PERIODS = {"下午", "午后", "傍晚", "晚上", "晚间", "夜里", "夜间", "晚", "夜"}
_NIGHT_PERIODS = {"深夜", "半夜"}
_PERIOD_RE = re.compile("|".join(sorted((p for p in _PERIODS if len(p) > 1), key=len, reverse=True)))

_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_WEEKDAY.update({str(i): i - 1 for i in range(1, 8)})

_REL_DAY = re.compile(
    r"大前天|前天|昨天|昨日|昨儿|今天|今日|今儿|明天|后天|(?P<short>[今昨])(?P<part>早|晨|晚|夜)"
    r"|(?<![目之以提面眼当从空门楼向往])(?P<short2>前)(?P<part2>晚|夜)"
)
_REL_DAY_OFFSET = {"大前天": -3, "前天": -2, "前": -2, "昨天": -1, "昨日": -1, "昨儿": -1, "昨": -1, "今天": 0,
                   "今日": 0, "今儿": 0, "今": 0, "明天": 1, "后天": 2}
_YEAR = r"(?:(?P<y>[0-9]{4}|[零〇一二三四五六七八九]{4})年|(?P<yrel>去年|今年|前年))"
_FULL_DATE = re.compile(rf"{_YEAR}?(?P<m>{_NUM})月份?(?P<d>{_NUM})[日号]")
_ISO_DATE = re.compile(r"(?<![0-9])(?P<y>20[0-9]{2})[-/.](?P<m>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})(?![0-9])")
_SLASH_DATE = re.compile(r"(?<![0-9/.\-])(?P<m>1[0-2]|0?[1-9])/(?P<d>3[01]|[12][0-9]|0?[1-9])(?![0-9/])")
_MONTH_ONLY = re.compile(rf"(?<![0-9个])(?:{_YEAR})?(?P<m>{_NUM})月份?(?![前后了多内])")
_BARE_DAY = re.compile(
    rf"(?P<rel>本月|这个月|上个?月)?(?<![0-9路街道巷栋楼弄村组里院号门座幢室])(?P<d>{_NUM})[日号]"
    r"(?=\s*(?:那天|当天|早|上午|中午|下午|傍晚|晚|夜|凌晨|半夜|深夜|[0-9零一二两三四五六七八九十]+点))"
)
_WEEK_DAY = re.compile(r"(?P<pre>上上|上|这|本|下)?个?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天末1-7])")
_WEEK_ONLY = re.compile(r"(?P<pre>上上|上|这|本)个?(?:周|星期|礼拜)(?![一二三四五六日天末1-7])")
_AMOUNT = rf"(?P<n>{_NUM}|几|半)个?(?P<more>多)?个?(?P<unit>小时|钟头|分钟|天|日|星期|周|礼拜|月|年)(?P<more2>多)?"
_OFFSET = re.compile(rf"{_AMOUNT}(?:以|之)?前")
# How long something has lasted: "已经三天", "坏了一个多月", "三天了".
_LASTED = (
    re.compile(rf"(?:已经|已|有|快|近|将近|持续|整整|了|都){_AMOUNT}(?![前后])"),
    re.compile(rf"{_AMOUNT}(?:了|之久|以上)"),
)
_CLOCK = re.compile(
    rf"(?P<h>{_NUM})(?:点|时)(?:钟)?(?:(?P<half>半)|(?P<q>一刻|三刻)|(?P<mi>{_NUM})分?)?(?!点)"
    r"|(?<![0-9])(?P<h2>[0-2]?[0-9])[:：](?P<mi2>[0-5][0-9])(?![0-9])"
)
# (pattern, kind) for vague ranges: kind picks the range in _vague().
_VAGUE = [
    (re.compile(r"就在刚才|刚才|刚刚|方才"), "just_now"),
    (re.compile(r"这几天|这两天|最近几天|近几天|这些天|连续几天|这些日子"), "these_days"),
    (re.compile(r"前几天|前些天|前两天|前些日子"), "few_days_ago"),
    (re.compile(r"前段时间|前一段时间|前阵子|前一阵子"), "a_while_ago"),
    (re.compile(r"最近一段时间|最近|近期|近来|近日|这段时间|这阵子|近段时间|这一阵"), "recently"),
    (re.compile(r"上个月|上月"), "last_month"),
    (re.compile(r"这个月|本月"), "this_month"),
    (re.compile(r"去年"), "last_year"),
    (re.compile(r"今年"), "this_year"),
    (re.compile(r"现在|此刻|眼下"), "now"),
]
_ENGLISH = [
    (re.compile(r"\blast night\b", re.I), "昨晚"), (re.compile(r"\byesterday\b", re.I), "昨天"),
    (re.compile(r"\bthis morning\b", re.I), "今天早上"), (re.compile(r"\btonight\b", re.I), "今晚"),
    (re.compile(r"\btoday\b", re.I), "今天"), (re.compile(r"\bjust now\b", re.I), "刚才"),
    (re.compile(r"\blast week\b", re.I), "上周"), (re.compile(r"\brecently\b", re.I), "最近"),
    (re.compile(r"\b(\d+) days? ago\b", re.I), r"\1天前"), (re.compile(r"\b(\d+) hours? ago\b", re.I), r"\1小时前"),
    (re.compile(r"\b(?:in the )?morning\b", re.I), "早上"), (re.compile(r"\b(?:in the )?afternoon\b", re.I), "下午"),
    (re.compile(r"\b(?:in the )?evening\b|\bat night\b", re.I), "晚上"),
]


@dataclass
class _Anchor:
    """A matched piece: a single day (`day`) that a part of the day may refine, or a finished range."""

    start: int
    end: int
    day: date | None = None
    range_: tuple[datetime, datetime] | None = None
    weak: bool = False


# ------------------------------------------------------------------------------------------------- helpers


def _at(day: date, hour: float, now: datetime) -> datetime:
    """`day` at `hour` (may be ≥ 24: next day) in the time zone of `now`."""
    return datetime.combine(day, time(0), tzinfo=now.tzinfo) + timedelta(hours=hour)


def _month_start(year: int, month: int) -> date:
    while month < 1:
        year, month = year - 1, month + 12
    while month > 12:
        year, month = year + 1, month - 12
    return date(year, month, 1)


def _resolve_year(match: re.Match, now: datetime) -> int | None:
    """Explicit year, or None for 'the most recent such date' (decided by the caller)."""
    groups = match.groupdict()
    if groups.get("y"):
        return _num(groups["y"])
    rel = groups.get("yrel")
    if rel:
        return now.year + {"去年": -1, "今年": 0, "前年": -2}[rel]
    return None


def _safe_date(year: int, month: int | None, day: int | None) -> date | None:
    try:
        return date(year, month or 0, day or 0)
    except (ValueError, TypeError):
        return None


def _recent_date(month: int | None, day: int | None, now: datetime) -> date | None:
    """This year's month/day, or last year's when this year's would lie more than a day in the future."""
    found = _safe_date(now.year, month, day)
    if found is not None and found > now.date() + timedelta(days=1):
        found = _safe_date(now.year - 1, month, day)
    return found


def _unit(unit: str) -> timedelta:
    return {
        "小时": timedelta(hours=1), "钟头": timedelta(hours=1), "分钟": timedelta(minutes=1),
        "天": timedelta(days=1), "日": timedelta(days=1), "星期": timedelta(days=7), "周": timedelta(days=7),
        "礼拜": timedelta(days=7), "月": timedelta(days=30), "年": timedelta(days=365),
    }[unit]


def _amount(n: str, more: bool) -> float | None:
    """Number of units in "三天" / "半个月" / "一个多月" (多 adds half a unit); None for 几 ("a few")."""
    value = 0.5 if n == "半" else (None if n == "几" else _num(n))
    if value is None:
        return None
    return value + (0.5 if more else 0.0)


def _is_zero(n: str) -> bool:
    """0 units ("0天") or absurdly many ("九千年前"): not a time we can use."""
    value = None if n in ("半", "几") else _num(n)
    return n not in ("半", "几") and (not value or value > 200)


# ------------------------------------------------------------------------------------------------- anchors


def _anchors(text: str, now: datetime) -> list[_Anchor]:
    """Every day/range expression in `text`; overlapping ones are resolved by the caller (longest first)."""
    today = now.date()
    found: list[_Anchor] = []
    for m in _REL_DAY.finditer(text):
        key = m.group("short") or m.group("short2") or m.group(0)
        found.append(_Anchor(m.start(), m.end(), day=today + timedelta(days=_REL_DAY_OFFSET[key])))
    for m in _FULL_DATE.finditer(text):
        year, month, day = _resolve_year(m, now), _num(m.group("m")), _num(m.group("d"))
        resolved = _safe_date(year, month, day) if year else _recent_date(month, day, now)
        if resolved:
            found.append(_Anchor(m.start(), m.end(), day=resolved))
    for m in _ISO_DATE.finditer(text):
        resolved = _safe_date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
        if resolved:
            found.append(_Anchor(m.start(), m.end(), day=resolved))
    for m in _SLASH_DATE.finditer(text):
        resolved = _recent_date(int(m.group("m")), int(m.group("d")), now)
        if resolved:
            found.append(_Anchor(m.start(), m.end(), day=resolved))
    for m in _BARE_DAY.finditer(text):
        day, rel = _num(m.group("d")), m.group("rel")
        if rel and rel.startswith("上"):
            month_start = _month_start(today.year, today.month - 1)
            resolved = _safe_date(month_start.year, month_start.month, day)
        else:
            resolved = _safe_date(today.year, today.month, day)
            if resolved and resolved > today + timedelta(days=1) and not rel:
                month_start = _month_start(today.year, today.month - 1)
                resolved = _safe_date(month_start.year, month_start.month, day)
        if resolved:
            found.append(_Anchor(m.start(), m.end(), day=resolved))
    for m in _MONTH_ONLY.finditer(text):
        month, year = _num(m.group("m")), _resolve_year(m, now)
        if not month or not 1 <= month <= 12:
            continue
        if year is None:
            year = now.year if month <= now.month else now.year - 1
        first = date(year, month, 1)
        last = _month_start(year, month + 1)
        found.append(_Anchor(m.start(), m.end(), range_=(_at(first, 0, now), _at(last, 0, now))))
    monday = today - timedelta(days=today.weekday())
    for m in _WEEK_DAY.finditer(text):
        pre, wd = m.group("pre"), m.group("wd")
        week_start = monday + timedelta(days={"上上": -14, "上": -7, "下": 7}.get(pre or "", 0))
        if wd == "末":
            first = week_start + timedelta(days=5)
            if not pre and first > today:
                first -= timedelta(days=7)
            found.append(_Anchor(m.start(), m.end(), range_=(_at(first, 0, now), _at(first, 48, now))))
            continue
        resolved = week_start + timedelta(days=_WEEKDAY[wd])
        if not pre and resolved > today:
            resolved -= timedelta(days=7)
        found.append(_Anchor(m.start(), m.end(), day=resolved))
    for m in _WEEK_ONLY.finditer(text):
        week_start = monday + timedelta(days={"上上": -14, "上": -7}.get(m.group("pre"), 0))
        found.append(_Anchor(m.start(), m.end(), range_=(_at(week_start, 0, now), _at(week_start, 24 * 7, now))))
    for m in _OFFSET.finditer(text):
        if not _is_zero(m.group("n")):
            found.extend(_offset_anchor(m, now))
    for m in (m for pattern in _LASTED for m in pattern.finditer(text)):
        if _is_zero(m.group("n")):
            continue
        amount = _amount(m.group("n"), bool(m.group("more") or m.group("more2")))
        if amount is None:
            amount = 3.0  # 几天 / 几个月: "a few"
        start = now - _unit(m.group("unit")) * amount
        begin = m.start() + (1 if text[m.start()] in "了都" else 0)  # "坏了三天": the time is "三天"
        found.append(_Anchor(begin, m.end(), range_=(start, now)))
    for pattern, kind in _VAGUE:
        for m in pattern.finditer(text):
            found.append(_Anchor(m.start(), m.end(), range_=_vague(kind, now), weak=kind in ("now", "recently")))
    return found


def _offset_anchor(m: re.Match, now: datetime) -> list[_Anchor]:
    unit = _unit(m.group("unit"))
    amount = _amount(m.group("n"), bool(m.group("more") or m.group("more2")))
    today = now.date()
    if amount is None:  # 几天前 / 几个月前: somewhere between two and seven units back
        return [_Anchor(m.start(), m.end(), range_=(now - unit * 7, now - unit * 2))]
    offset = unit * amount
    if unit == timedelta(days=1) and amount == int(amount):
        return [_Anchor(m.start(), m.end(), day=today - timedelta(days=int(amount)))]
    if unit < timedelta(days=1):
        slack = max(timedelta(minutes=10), offset / 4)
    else:
        slack = max(timedelta(days=3), offset / 4)
    point = now - offset
    return [_Anchor(m.start(), m.end(), range_=(point - slack, min(now, point + slack)))]


def _vague(kind: str, now: datetime) -> tuple[datetime, datetime]:
    today = now.date()
    if kind == "just_now":
        return now - timedelta(minutes=30), now
    if kind == "now":
        return now - timedelta(minutes=15), now
    if kind == "these_days":
        return _at(today - timedelta(days=6), 0, now), now
    if kind == "few_days_ago":
        return _at(today - timedelta(days=7), 0, now), _at(today, 0, now)
    if kind == "a_while_ago":
        return now - timedelta(days=60), now - timedelta(days=7)
    if kind == "recently":
        return now - timedelta(days=30), now
    if kind == "last_month":
        first = _month_start(today.year, today.month - 1)
        return _at(first, 0, now), _at(today.replace(day=1), 0, now)
    if kind == "this_month":
        return _at(today.replace(day=1), 0, now), now
    if kind == "last_year":
        return _at(date(today.year - 1, 1, 1), 0, now), _at(date(today.year, 1, 1), 0, now)
    return _at(date(today.year, 1, 1), 0, now), now  # this_year


# ------------------------------------------------------------------------------------------------- time of day


def _period_near(text: str, pos: int) -> re.Match | None:
    """A part-of-the-day word starting at `pos` (after optional 的/那天/space)."""
    gap = re.compile(r"(?:\s|的|那天|当天|那个)*")
    at = gap.match(text, pos).end()
    return _PERIOD_RE.match(text, at)


def _clock_near(text: str, pos: int) -> re.Match | None:
    gap = re.compile(r"(?:\s|的|大概|大约|约|差不多|左右)*")
    at = gap.match(text, pos).end()
    return _CLOCK.match(text, at)


def _clock_hours(m: re.Match) -> tuple[int, float, bool] | None:
    """(hour, minutes as a fraction of an hour, minute given) of a clock match, or None when not a clock time."""
    if m.group("h2") is not None:
        hour, minute = int(m.group("h2")), int(m.group("mi2"))
    else:
        hour = _num(m.group("h"))
        if m.group("half"):
            minute = 30
        elif m.group("q"):
            minute = 15 if m.group("q") == "一刻" else 45
        elif m.group("mi"):
            minute = _num(m.group("mi"))
        else:
            minute = None
        if minute is None and m.group(0).endswith("时"):
            return None  # "三时" alone is too rare as a time and too common in other words
    if hour is None or hour > 24 or (minute or 0) >= 60:
        return None
    return hour, (minute or 0) / 60, minute is not None


def _on_day(day: date | None, period: str | None, clock: tuple[int, float, bool] | None, now: datetime):
    """Range for a part of the day and/or a clock time on `day` (None: the most recent past one)."""
    if clock is not None:
        hour, fraction, minute_given = clock
        candidates = [hour]
        if period in _PM_PERIODS and hour < 12:
            candidates = [hour + 12]
        elif period in _PM_PERIODS and hour == 12 and period not in ("下午", "午后"):
            candidates = [24]
        elif period in _NIGHT_PERIODS:
            candidates = [hour + 24 if hour < 6 else (0 + 24 if hour == 12 else hour)]
        elif period == "中午" and hour <= 2:
            candidates = [hour + 12]
        elif period is None and hour <= 12:
            candidates = [hour, hour + 12] if day is None else ([hour + 12] if 1 <= hour <= 5 else [hour])
        width = timedelta(minutes=30) if minute_given else timedelta(hours=1)
        days = [day] if day else [now.date(), now.date() - timedelta(days=1)]
        for d in days:
            for h in sorted(candidates, reverse=True):
                start = _at(d, h + fraction, now)
                if day is not None or start <= now:
                    return start, start + width
        return None
    low, high = _PERIODS[period]
    days = [day] if day else [now.date(), now.date() - timedelta(days=1)]
    for d in days:
        start, end = _at(d, low, now), _at(d, high, now)
        if day is not None or start <= now:
            return start, end
    return None


# ------------------------------------------------------------------------------------------------- public


def _english_to_chinese(text: str) -> str:
    for pattern, replacement in _ENGLISH:
        text = pattern.sub(replacement, text)
    return text


def _pick(anchors: list[_Anchor]) -> _Anchor | None:
    """Strong before weak, then earliest, then longest."""
    if not anchors:
        return None
    return min(anchors, key=lambda a: (a.weak, a.start, -(a.end - a.start)))


def parse_when(text: str, now: datetime) -> TimeRange | None:
    """The first time expression in `text` resolved against `now`, or None when there is none.

    >>> from datetime import datetime
    >>> parse_when("昨天晚上八点", datetime(2026, 11, 25, 10, 0)).start
    datetime.datetime(2026, 11, 24, 20, 0)
    """
    text = normalize(text)
    if not text:
        return None
    if re.search(r"[A-Za-z]", text):
        text = _english_to_chinese(text)
    anchor = _pick(_anchors(text, now))
    if anchor is not None and anchor.range_ is not None:
        start, end = anchor.range_
        return _range(start, end, text[anchor.start : anchor.end])

    # A single day, possibly refined by a part of the day and a clock time right after it.
    search_from = anchor.end if anchor else 0
    implied = None
    if anchor is not None:
        words = text[anchor.start : anchor.end]
        if len(words) == 2 and words[0] in "今昨前" and words[1] in "早晨晚夜":
            implied = words[1]  # 今早 / 昨晚 carry their own part of the day
        period_match = _period_near(text, anchor.end)
    else:
        period_match = _PERIOD_RE.search(text)
    period = period_match.group(0) if period_match else implied
    if period_match:
        search_from = period_match.end()
    clock_match = _clock_near(text, search_from) if (anchor or period_match) else None
    if clock_match is None and anchor is None:
        clock_match = _standalone_clock(text)
    clock = _clock_hours(clock_match) if clock_match else None
    if clock is None:
        clock_match = None

    if anchor is None and period is None and clock is None:
        return None
    day = anchor.day if anchor else None
    if period is None and clock is None:
        start, end = _at(day, 0, now), _at(day, 24, now)
    else:
        resolved = _on_day(day, period, clock, now)
        if resolved is None:
            return None
        start, end = resolved
    if start < now < end:
        end = now
    pieces = [m for m in (anchor, period_match, clock_match) if m is not None]
    first = min(p.start if isinstance(p, _Anchor) else p.start() for p in pieces)
    last = max(p.end if isinstance(p, _Anchor) else p.end() for p in pieces)
    return _range(start, end, text[first:last])


def _range(start: datetime, end: datetime, text: str) -> TimeRange:
    # "本月" said at 00:00 on the 1st would be empty; a range always lasts at least a minute.
    return TimeRange(start, max(end, start + timedelta(minutes=1)), text)


def _standalone_clock(text: str) -> re.Match | None:
    """A clock time with no day or part of the day: only when it clearly is one ("八点半", "8:30", "十点左右")."""
    for m in _CLOCK.finditer(text):
        if m.group("h2") is not None:
            return m
        rest = text[m.end() : m.end() + 2]
        whole = text.strip(" ，。,.!！?？") == m.group(0)
        if m.group("half") or m.group("q") or m.group("mi") or whole or rest.startswith(("左右", "钟", "整", "多")):
            return m
    return None
