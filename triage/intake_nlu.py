"""Reading one chat message of a citizen (诉求受理对话) into slot values and intents, for triage/intake.py.

One job: `MessageReader.read(text, now) -> Reading`: the phone number (validated mainland mobile, or landline with
area code; spoken digits such as 幺三九 read too), 匿名, a name, the place (via `triage.places.extract_place`), the
time (via `triage.timeparse.parse_when`), and what kind of message it is: cancel / confirm / deny, a correction,
a greeting, chatter, English, empty or emoji-only, or a description of a problem. Plus the small pure functions
that fold a reading into slot values (`merge_place`, `where_from`, `clean_description`). No dialogue state here.

The words it listens for are data (``corpora/intake/lexicon.yaml``) so a city can edit them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Mapping

import yaml

from triage.text import find_pii, normalize
from triage.timeparse import TimeRange, parse_when

try:  # places.py is written by another engineer; the dialogue still works (less well) without it.
    from triage.places import extract_place as _extract_place
except ImportError:  # pragma: no cover - only while places.py is missing or broken
    _extract_place = None

__all__ = ["PLACE_FIELDS", "Reading", "MessageReader", "load_lexicon", "DEFAULT_LEXICON_PATH", "merge_place",
           "where_from", "clean_description"]

logger = logging.getLogger(__name__)

DEFAULT_LEXICON_PATH = Path(__file__).resolve().parent.parent / "corpora" / "intake" / "lexicon.yaml"
PLACE_FIELDS = ("province", "city", "district", "street", "community", "road", "detail")

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_PUNCT_AND_PARTICLES = re.compile(r"[\s,，。.!！?？~～、;；:：…\-—\"“”'‘’()（）\[\]【】]+|[吧啊呀哈呢嘛哦噢喔]+$")
# Characters that carry meaning; a message without any (only emoji, symbols, spaces) is "empty".
_MEANINGFUL = re.compile(r"[\u3400-\u9fffA-Za-z0-9]")
_SPOKEN = str.maketrans({**{ch: "0" for ch in "零〇洞"}, **{ch: "1" for ch in "一幺么"}, **{ch: "2" for ch in "二两"},
                         "三": "3", "四": "4", "五": "5", "六": "6", **{ch: "7" for ch in "七拐"}, "八": "8",
                         **{ch: "9" for ch in "九勾"}})
_DIGIT_RUN = re.compile(r"[0-9](?:[ \-]?[0-9])*")
# "是岳麓区不是天心区", "不是天心区，是岳麓区": a correction even without 不对/错了.
_CONTRAST = re.compile(r"^不是|是[^，,。；;]{1,12}[,，]?(?:而)?不是|不是[^，,。；;]{1,12}[,，]?(?:而)?是")
_NEGATED = re.compile(r"(?:而|并)?(?:不是|不在|并非)[^，,。；;！!？?\s]*")
_NAME_PATTERNS = (
    re.compile(r"(?:我叫|我的名字是|名字叫|姓名[是:：]?)\s*([\u4e00-\u9fff]{2,4}?)(?=[，,。\s]|$|电话|手机)"),
    re.compile(r"(?:我姓|本人姓)([\u4e00-\u9fff])"),
)


def load_lexicon(path: str | Path | None = None) -> dict:
    """The intake word lists (corpora/intake/lexicon.yaml by default)."""
    with open(path or DEFAULT_LEXICON_PATH, encoding="utf-8") as fh:
        return _as_strings(yaml.safe_load(fh))


def _as_strings(node):
    """YAML reads an unquoted yes/no as a boolean; every word here is text."""
    if isinstance(node, dict):
        return {key: _as_strings(value) for key, value in node.items()}
    if isinstance(node, list):
        return [str(item) for item in node]
    return node


@dataclass
class Reading:
    """What one message says. Slot fields are None when the message does not give them."""

    text: str
    empty: bool = False
    english: bool = False
    greeting: bool = False
    intent_only: bool = False
    chatter: bool = False
    offtopic: bool = False
    description: bool = False
    cancel: bool = False
    confirm: bool = False
    deny: bool = False
    correction: bool = False
    unknown: bool = False
    fields_named: list[str] = field(default_factory=list)
    phone: str | None = None
    invalid_phone: str | None = None
    anonymous: bool = False
    name: str | None = None
    place: dict | None = None
    when: TimeRange | None = None
    residue: str = ""

    @property
    def has_slot_value(self) -> bool:
        return bool(self.phone or self.anonymous or self.place or self.when or self.invalid_phone)


class MessageReader:
    """Reads chat messages with one lexicon (see corpora/intake/lexicon.yaml).

    `max_read_chars`: slot values are looked for in the first this-many characters only, so a pasted essay costs
    no more than a long message (the whole text is still kept as the description).
    """

    def __init__(self, *, lexicon: Mapping | str | Path | None = None, max_read_chars: int = 1000):
        self.max_read_chars = max_read_chars
        self.lexicon = _as_strings(dict(lexicon)) if isinstance(lexicon, Mapping) else load_lexicon(lexicon)
        lex = self.lexicon
        self._problem = tuple(lex.get("problem", ()))
        self._offtopic = tuple(lex.get("offtopic", ()))
        self._fields = {name: tuple(words) for name, words in (lex.get("fields") or {}).items()}

    # ---------------------------------------------------------------------------------------------- public

    def read(self, raw_text: str | None, now: datetime) -> Reading:
        """Everything `raw_text` says, read against `now` for times."""
        text = normalize(raw_text)
        reading = Reading(text=text)
        if not _MEANINGFUL.search(text):
            reading.empty = True
            return reading
        compact = _compact(text)
        reading.english = self._is_english(text)
        reading.cancel = self._is_cancel(compact)
        reading.confirm = self._matches_whole(compact, "confirm")
        reading.deny = self._starts_with_any(compact, self.lexicon.get("deny", ()))
        reading.correction = any(word in text for word in self.lexicon.get("correction", ())) or bool(
            _CONTRAST.search(text)
        )
        reading.unknown = any(word in text for word in self.lexicon.get("unknown", ()))
        reading.greeting = _only_words(compact, self.lexicon.get("greeting", ()))
        reading.fields_named = [name for name, words in self._fields.items() if any(w in text for w in words)]
        reading.anonymous = any(word in text for word in self.lexicon.get("anonymous", ())) or (
            len(compact) <= 10 and any(word in compact for word in self.lexicon.get("anonymous_short", ()))
        )

        # Slot values are read from the text without its negated parts: "是岳麓区不是天心区" → 岳麓区.
        asserted = _NEGATED.sub(" ", text[: self.max_read_chars])
        reading.phone, reading.invalid_phone = _read_phone(asserted)
        if reading.phone:
            reading.anonymous = False
        reading.name = _read_name(asserted)
        reading.when = parse_when(asserted, now)
        reading.place = _read_place(asserted)

        has_problem_word = any(word in text for word in self._problem)
        reading.residue = self._residue(text[: self.max_read_chars], reading)
        cjk_count = len(_CJK.findall(reading.residue))
        reading.chatter = any(word in text for word in self._offtopic) and not has_problem_word
        intent_only = _only_words(compact, self.lexicon.get("intent_only", ()))
        reading.description = not reading.greeting and not intent_only and (
            (has_problem_word and cjk_count >= 2) or (cjk_count >= 12 and not reading.chatter)
        )
        reading.offtopic = not reading.description and not intent_only and (
            reading.chatter or not reading.has_slot_value
        )
        reading.intent_only = intent_only
        return reading

    # ---------------------------------------------------------------------------------------------- intents

    def _matches_whole(self, compact: str, key: str) -> bool:
        return compact.lower() in {w.lower() for w in self.lexicon.get(key, ())}

    @staticmethod
    def _starts_with_any(compact: str, words) -> bool:
        return any(compact.startswith(w) for w in words)

    def _is_cancel(self, compact: str) -> bool:
        """The whole message is a cancel phrase, or starts with one and says little else."""
        words = tuple(self.lexicon.get("cancel", ()))
        if compact in words:
            return True
        for word in words:
            if compact.startswith(word) and len(compact) <= len(word) + 6:
                rest = compact[len(word):]
                if not any(p in rest for p in self._problem) and not _DIGIT_RUN.search(rest):
                    return True
        return False

    @staticmethod
    def _is_english(text: str) -> bool:
        """Mostly Latin words and hardly any Chinese."""
        latin_words = _LATIN_WORD.findall(text)
        return len(latin_words) >= 3 and len(_CJK.findall(text)) <= len(latin_words)

    def _residue(self, text: str, reading: Reading) -> str:
        """The message without the slot values found in it: what is left may describe the problem."""
        residue = text
        pieces = [reading.when.text if reading.when else None, reading.name]
        pieces += [v for v in (reading.place or {}).values() if v]
        for piece in sorted((p for p in pieces if p), key=len, reverse=True):
            residue = residue.replace(piece, " ")
        for span in reversed(find_pii(residue)):
            residue = residue[: span.start] + " " + residue[span.end :]
        for words in self._fields.values():
            for word in words:
                residue = residue.replace(word, " ")
        for key in ("anonymous", "anonymous_short", "correction", "unknown", "greeting", "deny"):
            for word in self.lexicon.get(key, ()):
                if len(word) > 1:
                    residue = residue.replace(word, " ")
        return re.sub(r"\s+", " ", residue).strip()


# ---------------------------------------------------------------------------------------------- slot readers


def _compact(text: str) -> str:
    """Text without punctuation, spaces and trailing modal particles, for whole-message intent matching."""
    previous = None
    while previous != text:
        previous, text = text, _PUNCT_AND_PARTICLES.sub("", text)
    return text.lower()


def _only_words(compact: str, words) -> bool:
    """The message consists of these words and nothing else ("你好在吗")."""
    if not compact:
        return False
    for word in sorted(words, key=len, reverse=True):
        compact = compact.replace(word.lower(), "")
    return compact == ""


def _read_phone(text: str) -> tuple[str | None, str | None]:
    """(valid number, None) or (None, digits that look like a failed attempt at one) or (None, None).

    The last valid number in the message wins: "电话错了，是139…" after a negation-free rewrite leaves only one.
    """
    numbers = [span.digits for span in find_pii(text) if span.kind in ("phone", "landline")]
    if numbers:
        return numbers[-1], None
    spoken = text.translate(_SPOKEN)
    for run in _DIGIT_RUN.finditer(spoken):
        digits = re.sub(r"[ \-]", "", run.group())
        # 1xxxxxxxxx(x…) of 9–13 digits or 0xxx… of 9–13 digits: an attempt at a phone that does not validate.
        if 9 <= len(digits) <= 13 and digits[0] in "01" and not _is_other_number(text, run):
            return None, digits
    return None, None


def _is_other_number(text: str, run: re.Match) -> bool:
    """Numbers followed by 号/栋/元/年 are house numbers, money or years, not phones."""
    after = text[run.end() : run.end() + 1]
    return after in ("号", "栋", "元", "年", "块", "室", "米", "路")


def _read_name(text: str) -> str | None:
    for pattern in _NAME_PATTERNS:
        m = pattern.search(text)
        if m:
            return m.group(1)
    return None


def _read_place(text: str) -> dict | None:
    """The place fields named in `text` (only the ones given), or None."""
    if _extract_place is not None:
        try:
            place = _extract_place(text)
            fields = {k: v for k, v in place.as_dict().items() if k in PLACE_FIELDS and v}
        except Exception:  # noqa: BLE001 - a bug in the place parser must not break a citizen's chat
            logger.exception("place extraction failed; falling back to the simple reader")
            fields = _simple_place(text)
    else:
        fields = _simple_place(text)
    if not any(fields.get(k) for k in ("street", "community", "road", "detail")):
        rest = text
        for value in sorted(fields.values(), key=len, reverse=True):
            rest = rest.replace(value, " ")
        fields.update(_spot(rest))
    return fields or None


_SEGMENT_BREAK = re.compile(r"[的了在是和与就到从，,。；;！!？?\s]")
_STREET = re.compile(r"([\u4e00-\u9fff]{2,5}(?:街道|镇|乡))")
_ROAD = re.compile(r"([\u4e00-\u9fff]{1,5}(?:大道|大街|路|街|巷|弄))([0-9]+号)?(?![灯面边上况线旁口过道])")
_COMPOUND = re.compile(r"([\u4e00-\u9fff]{2,6}(?:小区|花园|家园|公寓|大厦|新村|广场|市场|公园|学校|小学|中学|医院))")
_LANDMARK = re.compile(
    r"([\u4e00-\u9fff]{1,4}(?:门口|路口|街口)|[\u4e00-\u9fff]{2,4}(?:河|湖|桥|江|山|站|码头|公园))(?:边|畔|旁|下|附近)?"
)
_GENERIC = ("马路", "道路", "公路", "小路", "大路", "这条路", "那条路", "街", "我们小区", "我家小区", "这个小区",
            "那个小区", "本小区", "该小区", "我们学校", "这个学校")


def _spot(text: str) -> dict:
    """A road ("芙蓉中路58号") or a named compound ("东塘小区") the place parser did not report."""
    found: dict = {}
    for segment in _SEGMENT_BREAK.split(text):
        if "street" not in found:
            m = _STREET.search(segment)
            if m and not m.group(1).startswith(("我", "这", "那", "本", "该")):
                found["street"] = m.group(1)
        if "road" not in found:
            m = _ROAD.search(segment)
            if m and m.group(1) not in _GENERIC and not m.group(1).startswith(("我", "这", "那", "一")):
                found["road"] = m.group(1) + (m.group(2) or "")
        if "community" not in found:
            m = _COMPOUND.search(segment)
            if m and m.group(1) not in _GENERIC and not m.group(1).startswith(("我", "这", "那", "本", "该")):
                found["community"] = m.group(1)
    if not found:
        for segment in _SEGMENT_BREAK.split(text):
            m = _LANDMARK.search(segment)
            if m and not m.group(1).startswith(("我", "这", "那", "家", "有", "小区", "单位")):
                found["detail"] = m.group(0)
                break
    return found


_SIMPLE_DISTRICT = re.compile(r"([\u4e00-\u9fff]{1,4}?(?<!小|社|园|景|校|街|厂|城|片|辖)(?:区|县))")
_SIMPLE_SPOT = re.compile(r"([\u4e00-\u9fff0-9]{2,12}?(?:小区|社区|花园|大道|路|街|巷|村|广场|[0-9]+号|路口))")


def _simple_place(text: str) -> dict:
    """A rough reader used only when triage.places cannot be imported."""
    fields = {}
    m = _SIMPLE_DISTRICT.search(text)
    if m:
        fields["district"] = m.group(1)
    m = _SIMPLE_SPOT.search(text[m.end():] if m else text)
    if m:
        fields["detail"] = m.group(1)
    return fields


# ---------------------------------------------------------------------------------------------- slot values


def where_from(fields: Mapping, text: str | None = None) -> dict:
    """The `where` slot: every place field plus a display text built from them (city down to detail)."""
    where = {k: fields.get(k) for k in PLACE_FIELDS}
    if text is None:
        parts: list[str] = []
        for key in ("city", "district", "street", "community", "road", "detail"):
            value = where[key]
            if value and not any(value in p for p in parts):
                parts = [p for p in parts if p not in value]
                parts.append(value)
        if not where["city"] and where["province"]:
            parts.insert(0, where["province"])
        text = "".join(parts)
    return {"text": text, **where}


def merge_place(old: Mapping | None, fields: Mapping, *, override: bool) -> dict:
    """`old` where-slot updated with newly read place `fields`.

    With `override` (an answer or a correction) new fields win: a new spot (street/community/road/detail) replaces
    the old spot instead of being glued to it, and a different district drops the old street and community
    (街道/社区 belong to a district). Without it, new fields only fill gaps.
    """
    old = old or {}
    new = {k: old.get(k) for k in PLACE_FIELDS}
    if override:
        spot_fields = ("street", "community", "road", "detail")
        if any(fields.get(k) for k in spot_fields):
            for lower in spot_fields:
                new[lower] = None
        elif fields.get("district") and fields["district"] != old.get("district"):
            for lower in ("street", "community"):
                new[lower] = None
        new.update({k: v for k, v in fields.items() if k in PLACE_FIELDS})
    else:
        for key, value in fields.items():
            if key in PLACE_FIELDS:
                new[key] = new.get(key) or value
    return where_from(new)


_CONTACT_LABEL = re.compile(r"(?:我的)?(?:电话|手机|联系方式|手机号|联系电话)(?:号码)?(?:是|:)?\s*(?=[,，。]|$)")


def clean_description(lexicon: Mapping, text: str, max_chars: int) -> str:
    """The message as the description (诉求内容): phone numbers (they go to `contact`) and a trailing "匿名"
    instruction removed, cut to `max_chars`."""
    for span in reversed([p for p in find_pii(text) if p.kind in ("phone", "landline")]):
        text = text[: span.start] + text[span.end :]
    text = _CONTACT_LABEL.sub("", text)
    anonymous = "|".join(map(re.escape, lexicon.get("anonymous", ())))
    if anonymous:
        text = re.sub(rf"[,，。\s]*(?:{anonymous})[。.!！]*$", "", text)
    return text.strip(" ,，。")[:max_chars]
