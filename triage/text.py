"""Text normalisation and personal-data masking (个人信息脱敏) for petition text.

One job: turn whatever a caller sends into the canonical text every component reads, and keep phone numbers,
resident ID numbers (身份证号), bank cards and known names out of logs and plain-view storage.

- `normalize`: NFKC (full width → half width), traditional → simplified (繁→简, OpenCC ``t2s``), HTML removed
  (``<script>``/``<style>`` bodies dropped, entities unescaped), zero-width and control characters removed, every
  whitespace run folded to one space. Emoji are kept.
- `compose` / `split_composed`: the one "title\\ncontent" string a petition is judged on.
- `find_pii` / `mask_pii` / `mask_name` / `PiiMaskingFilter`: detection is checksum-aware (GB 11643 for ID numbers,
  Luhn for cards) and reads spoken digits (幺三八 零零一三 八零零零) as a number.
- `decode_bytes`: strict UTF-8, with a guarded GB18030 fallback for legacy exports.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from triage.errors import EmptyText, InvalidInput, TextTooLong

__all__ = [
    "normalize",
    "despace_cjk",
    "compose",
    "split_composed",
    "check_length",
    "PiiSpan",
    "find_pii",
    "mask_pii",
    "mask_name",
    "PiiMaskingFilter",
    "decode_bytes",
]

# ---------------------------------------------------------------------------------------------------------------
# normalisation

_WS = re.compile(r"\s+")
_SCRIPT_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# A tag must start with a letter (or /letter): "温度<10度" and "a < b" are text, not markup.
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_BLOCK_TAG = re.compile(r"<(?:br|p|div|li|tr|h[1-6])\b[^>]*>|</(?:p|div|li|tr|h[1-6])>", re.IGNORECASE)

# Invisible characters used to split words ("跳\u200b楼") or left over from copy-paste. ZWJ (U+200D) is handled
# separately because emoji sequences (👨‍👩‍👧) need it.
_INVISIBLE = "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
_INVISIBLE += "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"


def _build_translate_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {ord(ch): None for ch in _INVISIBLE}
    for code in list(range(0x00, 0x20)) + list(range(0x7F, 0xA0)):
        # Control characters that separate words become spaces; the rest vanish.
        table[code] = " " if chr(code) in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85" else None
    table[0x2028] = " "
    table[0x2029] = " "
    return table


_TRANSLATE = _build_translate_table()
_ZWJ_OUTSIDE_EMOJI = re.compile(r"(?<![\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F])\u200d|\u200d(?![\U0001F000-\U0001FAFF\u2600-\u27BF])")


@lru_cache(maxsize=1)
def _t2s():
    """The OpenCC traditional→simplified converter, built once on first use (it loads dictionaries)."""
    import opencc

    return opencc.OpenCC("t2s")


def strip_html(text: str) -> str:
    """Remove markup: drop <script>/<style> bodies and comments, turn block tags into spaces, unescape entities."""
    if "<" in text:
        text = _SCRIPT_STYLE.sub(" ", text)
        text = _COMMENT.sub(" ", text)
        text = _BLOCK_TAG.sub(" ", text)
        text = _TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def normalize(text: str | None) -> str:
    """Canonical form used everywhere: no HTML, NFKC (full→half width), simplified characters, single spaces.

    Never raises on odd input (emoji, lone surrogates are replaced, None gives "").
    """
    if not text:
        return ""
    text = strip_html(text)
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_TRANSLATE)
    if "\u200d" in text:
        text = _ZWJ_OUTSIDE_EMOJI.sub("", text)
    if not text.isascii():
        try:
            text = _t2s().convert(text)
        except UnicodeError:  # lone surrogates from a bad decoder: make them visible, do not crash
            text = _t2s().convert(text.encode("utf-8", "replace").decode("utf-8"))
    return _WS.sub(" ", text).strip()


_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_SPACE = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")


def despace_cjk(text: str) -> str:
    """Remove spaces between two Chinese characters ("跳 楼" → "跳楼"), undoing spacing used to evade keyword rules.

    Spaces next to Latin letters or digits are kept ("A3区 18号" stays readable).
    """
    return _CJK_SPACE.sub("", text)


@lru_cache(maxsize=4096)
def compose(title: str | None, content: str | None) -> str:
    """The one text a petition is judged on: normalised title, a newline, normalised content.

    `normalize` folds every newline away, so the first '\\n' always separates title from content. Cached: routing,
    risk, the encoder and the duplicate finder each ask for the same petition's text.
    """
    return f"{normalize(title or '')}\n{normalize(content or '')}"


def split_composed(text: str) -> tuple[str, str]:
    """Inverse of `compose`: (title, content)."""
    title, _, content = text.partition("\n")
    return title, content


def check_length(text: str, *, max_chars: int, field: str = "content") -> str:
    """Refuse blank text and text over the cap, with a clear message."""
    if not text or not text.strip():
        raise EmptyText(f"{field} is empty or only whitespace", field=field)
    if len(text) > max_chars:
        raise TextTooLong(f"{field} has {len(text)} characters; the limit is {max_chars}", field=field)
    return text


# ---------------------------------------------------------------------------------------------------------------
# personal data (PII)

# Digits as people say or write them: 幺 (yāo) for 1, 两 for 2, 洞 for 0, 拐 for 7, 勾 for 9 (radio/phone style),
# plus capital forms (大写) and full-width digits. Each maps one character to one character, so positions found
# in the "digit view" are positions in the original text. Positional numerals (十, 百) are not read here: phone,
# ID and card numbers are read digit by digit, and cn2an's amount parsing would turn 一百三十八 into 138.
_SPOKEN_DIGITS = {
    "0": "零〇○洞０Ｏ",
    "1": "一幺壹１",
    "2": "二两贰２",
    "3": "三叁３",
    "4": "四肆４",
    "5": "五伍５",
    "6": "六陆６",
    "7": "七柒拐７",
    "8": "八捌８",
    "9": "九玖勾９",
}
_DIGIT_VIEW = str.maketrans({ch: d for d, chars in _SPOKEN_DIGITS.items() for ch in chars})
_ANY_DIGIT = re.compile("[0-9" + "".join(_SPOKEN_DIGITS.values()) + "]")
# A number: digits with at most one separator (space, dash, dot) between any two. A trailing X closes an ID.
_NUMBER_RUN = re.compile(r"(?<![0-9])[0-9](?:[ \-.\u2013\u2014]?[0-9])*(?:[Xx](?![A-Za-z]))?")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_LANDLINE = re.compile(r"0[1-9][0-9]{8,10}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data: kind is phone | landline | id_card | bank_card; [start, end) in the text."""

    kind: str
    start: int
    end: int
    digits: str  # the number as plain ASCII digits (X kept for IDs)


def id_checksum_ok(number: str) -> bool:
    """GB 11643-1999 check digit of an 18-character resident ID number (居民身份证号码)."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def _plausible_birth(yyyymmdd: str) -> bool:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])
    return 1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31


def _is_id18(number: str) -> bool:
    return number[0] in "12345678" and _plausible_birth(number[6:14]) and id_checksum_ok(number)


def _is_id15(number: str) -> bool:
    # First-generation IDs (1984–2004) have no check digit: region code + YYMMDD + 3-digit sequence.
    return number.isdigit() and number[0] in "12345678" and _plausible_birth("19" + number[6:12])


def luhn_ok(number: str) -> bool:
    """Luhn (mod 10) check used by bank card numbers."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _classify(number: str) -> str | None:
    """Kind of a separator-free number, or None when it is not personal data we recognise."""
    n = len(number)
    if n == 18 and _is_id18(number):
        return "id_card"
    if not number.isdigit():
        return None
    if n == 15 and _is_id15(number):
        return "id_card"
    if n == 15 and number.startswith("0086") and _MOBILE.fullmatch(number[4:]):
        return "phone"
    if 16 <= n <= 19 and luhn_ok(number):
        return "bank_card"
    if n == 11 and _MOBILE.fullmatch(number):
        return "phone"
    if n == 13 and number.startswith("86") and _MOBILE.fullmatch(number[2:]):
        return "phone"
    if 10 <= n <= 12 and _LANDLINE.fullmatch(number):
        return "landline"
    return None


def _split_groups(view: str, start: int, end: int) -> list[tuple[int, int]]:
    """Digit groups [(start, end)] of one number run, split at separators."""
    groups, i = [], start
    while i < end:
        j = i
        while j < end and (view[j].isdigit() or view[j] in "Xx"):
            j += 1
        groups.append((i, j))
        i = j + 1
    return groups


def find_pii(text: str) -> list[PiiSpan]:
    """Phones, landlines, resident ID numbers and bank cards in `text`, left to right, without overlaps.

    Numbers may be spoken (幺三八…), full width, or broken by spaces/dashes ("138 0013 8000"). Within one run
    of digit groups the longest combination of adjacent groups that forms a valid number wins, so
    "13800138000 2023年" still yields the phone. An 18-digit number with a wrong check digit is not an ID.
    """
    if not text or not _ANY_DIGIT.search(text):
        return []
    view = text.translate(_DIGIT_VIEW)
    spans: list[PiiSpan] = []
    for run in _NUMBER_RUN.finditer(view):
        groups = _split_groups(view, run.start(), run.end())
        if sum(e - s for s, e in groups) < 10:
            continue
        i = 0
        while i < len(groups):
            found = None
            digits = ""
            for j in range(i, len(groups)):
                digits += view[groups[j][0] : groups[j][1]]
                if len(digits) > 19:
                    break
                kind = _classify(digits)
                if kind:
                    found = (j, kind, digits)
            if found is None:
                i += 1
                continue
            j, kind, digits = found
            start, end = groups[i][0], groups[j][1]
            if kind == "phone" and len(digits) > 11:  # 86 / 0086 prefix: span and digits are the national part
                prefix = len(digits) - 11
                digits = digits[prefix:]
                skipped = 0
                while skipped < prefix:
                    if view[start].isdigit():
                        skipped += 1
                    start += 1
                while not view[start].isdigit():
                    start += 1
            spans.append(PiiSpan(kind, start, end, digits))
            i = j + 1
    return spans


def _mask_digits(kind: str, digits: str) -> str:
    n = len(digits)
    if kind == "phone":
        return digits[:3] + "*" * (n - 5) + digits[-2:]
    if kind == "landline":
        area = 3 if digits[1] in "12" else 4  # 010, 02x are three-digit area codes; the rest have four
        return digits[:area] + "-" + "*" * (n - area - 2) + digits[-2:]
    if kind == "id_card":
        return digits[:6] + "*" * (n - 6)
    return "*" * (n - 4) + digits[-4:]


def mask_pii(text: str) -> str:
    """Mask personal numbers: phones 138******00, landlines 0355-*****67, IDs 140302************, cards ***1234."""
    spans = find_pii(text)
    if not spans:
        return text
    out, last = [], 0
    for span in spans:
        out.append(text[last : span.start])
        out.append(_mask_digits(span.kind, span.digits))
        last = span.end
    out.append(text[last:])
    return "".join(out)


def mask_name(text: str, name: str | None) -> str:
    """Mask a known petitioner name (诉求人姓名): keep the surname, star the rest ("张三丰" → "张**")."""
    if not text or not name or not name.strip():
        return text
    variants = {name.strip(), normalize(name)}
    for variant in sorted(variants, key=len, reverse=True):
        if len(variant) < 2 and not ("\u4e00" <= variant <= "\u9fff"):
            continue  # a single Latin letter would mask half the text
        masked = variant[0] + "*" * (len(variant) - 1) if len(variant) > 1 else "*"
        text = text.replace(variant, masked)
    return text


class PiiMaskingFilter(logging.Filter):
    """logging filter that masks phones, IDs and cards (and optional known names) in every record it passes.

    The message is formatted first (msg % args), masked, and stored back with args cleared, so handlers and
    formatters downstream only see the masked text. Attach it to handlers (``handler.addFilter``) so records
    from every logger are covered.
    """

    def __init__(self, name: str = "", *, names: tuple[str, ...] = ()):
        super().__init__(name)
        self.names = tuple(names)

    def _mask(self, value: str) -> str:
        value = mask_pii(value)
        for known in self.names:
            value = mask_name(value, known)
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string must not lose the record or leak its args
            message = str(record.msg)
        record.msg = self._mask(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        return True


# ---------------------------------------------------------------------------------------------------------------
# bytes

_UTF8_BOM = b"\xef\xbb\xbf"


def _looks_like_chinese(text: str) -> bool:
    """True when a GB18030 decoding reads as ordinary Chinese: non-ASCII characters are nearly all in GB2312.

    Random or binary bytes often decode under GB18030 (it maps most byte pairs), but into rare characters,
    private-use code points and four-byte sequences outside GB2312's common 6,763 characters and punctuation.
    """
    non_ascii = [ch for ch in text if ord(ch) > 0x7F]
    if not non_ascii:
        return False
    common = 0
    for ch in non_ascii:
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    controls = sum(1 for ch in text if ord(ch) < 0x20 and ch not in "\t\n\r")
    return common / len(non_ascii) >= 0.95 and controls == 0


def decode_bytes(data: bytes, *, allow_gb18030: bool = True, field: str = "body") -> str:
    """Decode request bytes: UTF-8 (a leading BOM is dropped); otherwise raise InvalidInput.

    With `allow_gb18030`, bytes that are not UTF-8 but decode cleanly as GB18030 *and* read as ordinary Chinese
    (see `_looks_like_chinese`) are accepted: exports from older 12345/信访 systems are often GBK. Valid UTF-8
    always wins, so a UTF-8 text is never misread as GBK.
    """
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as utf8_error:
        if allow_gb18030:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError:
                text = None
            if text is not None and _looks_like_chinese(text):
                return text
        bad = data[utf8_error.start : utf8_error.start + 1].hex()
        raise InvalidInput(
            f"{field} is not valid UTF-8 (byte 0x{bad} at offset {utf8_error.start}); send UTF-8 text",
            field=field,
        ) from None
