"""Lexicon side of risk detection (风险词表): text folding, pinyin spellings, and the compiled lexicon.

`fold` is the one matching form shared by the lexicon and the classifiers: NFKC, traditional→simplified, lower
case, and the separators people put between characters to dodge keyword filters removed, with a map back to input
offsets. `CompiledLexicon` turns corpora/risk/lexicon.yaml into Aho–Corasick automatons (`ahocorasick_rs`) and
regexes; `phonetic_hits` finds cues disguised by homophones or pinyin (跳搂, tiao lou); `rule_levels` applies the
lexicon to one folded text: cues dropped inside idioms, low when negated / hypothetical / reported / taken back,
lifted by boosters in the sentence, capped at medium by a past or recurring marker (去年, 时有发生, 漏过一次气). pypinyin is optional: without
it the phonetic channel is off and everything else works.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ahocorasick_rs

from triage.errors import BundleError
from triage.schemas import RiskLevel

_SENTENCE_END = re.compile(r"[。！？!?；;\n]")
_CLAUSE_END = re.compile(r"[。！？!?；;\n，,、：:]")
_LATIN_RUN = re.compile(r"[a-z]{2,}")
# the title of a book, film, game or programme: its words name it. Not a post's own title (标题《燃气泄漏无人管》).
_TITLE = re.compile(r"(?<!标题)(?<!标题:)(?<!标题：)(?<!主题)(?<!主题:)(?<!主题：)《[^《》]{1,30}》")
_FIRST_PERSON_INTENT = ("我就", "我要", "再不", "我们就", "不然", "否则", "逼我")
# close_person_speaks: how far before a reporting word a close person may stand (女儿在网上说, 我儿子昨晚在朋友圈);
# who is a stranger (the story is about someone else); and what a close person does to make it their own words.
_CLOSE_PERSON_BEFORE = 10
_STRANGERS = ("有人", "有个", "有一个", "一个人", "某人", "某个", "别人", "网友", "陌生人", "外地人", "一名", "一位", "一男子", "一女子")
_SAYS = re.compile(r"[^，。！？]{0,4}?(说|讲|念叨|嚷|喊|扬言|留言|发消息|发了|写了|要|想|打算|准备)")


# Characters dropped before matching: whitespace (but not newlines, which separate sentences), zero-width marks
# and the punctuation used to split a word so that filters miss it (跳 楼, 跳*楼, 自.杀).
_SEPARATORS = frozenset(" \t\r\u3000\u00a0*·•.-_|/\\~`'\"^+=#@&%$…—－~\u200b\u200c\u200d\u200e\u200f\ufeff")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def fold(text: str) -> tuple[str, list[int]]:
    """Return the matching form of `text` and, for each of its characters, the offset in `text` it came from."""
    text = text or ""
    nfkc = unicodedata.normalize("NFKC", text)
    if len(nfkc) == len(text):
        lowered = nfkc.lower()
        pairs = [(i, c) for i, c in enumerate(lowered) if c not in _SEPARATORS] if len(lowered) == len(nfkc) else None
    else:
        pairs = None
    if pairs is None:  # a character expanded under NFKC or lower(): map character by character
        pairs = []
        for i, ch in enumerate(text):
            for c in unicodedata.normalize("NFKC", ch).lower():
                if c not in _SEPARATORS:
                    pairs.append((i, c))
    folded = "".join(c for _, c in pairs)
    simplified = _t2s().convert(folded)
    if len(simplified) == len(folded):
        folded = simplified
    return folded, [i for i, _ in pairs]


def _toneless(reading: str) -> str:
    """yǐ → yi, lǜ → lu (the same rule for the lexicon and the text, so they still line up)."""
    return "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def pinyin_table() -> dict[str, str]:
    """Toneless pinyin of each Chinese character's first reading (跳 → tiao); empty without pypinyin."""
    try:
        from pypinyin.pinyin_dict import pinyin_dict
    except ImportError:  # the phonetic channel is then off; exact and folded matching still work
        return {}
    table = {}
    for code, readings in pinyin_dict.items():
        table[chr(code)] = _toneless(readings.split(",")[0])
    return table


@lru_cache(maxsize=1)
def pinyin_readings() -> dict[str, frozenset[str]]:
    """Every toneless reading of each character (露 → {lu, lou}); empty without pypinyin."""
    try:
        from pypinyin.pinyin_dict import pinyin_dict
    except ImportError:
        return {}
    out = {}
    for code, readings in pinyin_dict.items():
        out[chr(code)] = frozenset(_toneless(r) for r in readings.split(","))
    return out


def to_pinyin(folded: str) -> tuple[str, list[int], set[int]]:
    """Spell folded text in toneless pinyin: (haystack, folded offset of each letter, positions where a syllable starts).

    Latin letters are kept as they are, so 'tiao lou' and '自sha' line up with 跳楼 and 自杀; anything else breaks
    the haystack with '|' so that words never join across punctuation.
    """
    table = pinyin_table()
    out: list[str] = []
    where: list[int] = []
    starts: set[int] = set()
    for i, c in enumerate(folded):
        syllable = table.get(c)
        if syllable:
            starts.add(len(out))
            out.extend(syllable)
            where.extend([i] * len(syllable))
        elif "a" <= c <= "z":
            starts.add(len(out))
            out.append(c)
            where.append(i)
        else:
            out.append("|")
            where.append(i)
    return "".join(out), where, starts



def default_lexicon_path() -> Path:
    from triage.settings import get_settings

    return get_settings().corpora_dir / "risk" / "lexicon.yaml"


@dataclass(frozen=True)
class Windows:
    """How far (characters) a modifier acts: boosters around a cue, negation / hypothetical / reported words before it."""

    booster: int = 40
    negation: int = 8
    hypothetical: int = 12
    reported: int = 24


@dataclass(frozen=True)
class Hit:
    type: str
    level: int
    start: int  # in the folded text
    end: int
    standalone: bool = False  # counts even where the type `requires` a word nearby


class CompiledLexicon:
    """The lexicon turned into two automatons (cues, modifiers) and per-type regexes."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.types: list[str] = list(spec["types"])
        cue_entries: dict[str, list[tuple[str, int]]] = {}
        # terms are matched against folded text, so they are folded too (煤氣 or a spaced term still works)
        for term in map(fold_term, spec.get("exclusions", [])):
            cue_entries.setdefault(term, []).append(("_exclude", 0))
        self.cue_regex: list[tuple[str, int, re.Pattern]] = []
        self.phonetic: dict[str, list[tuple[str, int]]] = {}
        mod_entries: dict[str, set[str]] = {}
        for kind, terms in spec.get("modifiers", {}).items():
            for term in map(fold_term, terms):
                mod_entries.setdefault(term, set()).add(kind)
                if kind == "reported_media":  # news and fiction are reported speech, listed once
                    mod_entries[term].add("reported")
        self.booster_regex: list[tuple[str, str, re.Pattern]] = []
        self.requires: dict[str, int] = {}
        self.requires_terms: dict[str, tuple[str, ...]] = {}
        self.standalone: dict[str, set[str]] = {}
        table = pinyin_table()
        chars: dict[str, str] = {}
        for name, block in spec["types"].items():
            cue_level = {}
            for level_name, terms in (block.get("cues") or {}).items():
                for term in map(fold_term, terms):
                    cue_entries.setdefault(term, []).append((name, RiskLevel(level_name).rank))
                    cue_level[term] = RiskLevel(level_name).rank
            for level_name, patterns in (block.get("cue_patterns") or {}).items():
                for pattern in patterns:
                    self.cue_regex.append((name, RiskLevel(level_name).rank, re.compile(pattern)))
            for kind in ("to_high", "to_critical", "requires"):
                for term in map(fold_term, block.get(kind) or []):
                    mod_entries.setdefault(term, set()).add(f"{name}:{kind}")
            for kind in ("to_high", "to_critical"):
                for pattern in block.get(f"{kind}_patterns") or []:
                    self.booster_regex.append((name, kind, re.compile(pattern)))
            if block.get("requires"):
                self.requires[name] = int(block.get("requires_window", 40))
                self.requires_terms[name] = tuple(map(fold_term, block["requires"]))
                self.standalone[name] = set(map(fold_term, block.get("standalone") or []))
            if table:
                for term in map(fold_term, block.get("phonetic") or []):
                    spelled = "".join(table.get(c, c) for c in term)
                    self.phonetic.setdefault(spelled, []).append((name, cue_level.get(term, RiskLevel.high.rank)))
                    chars.setdefault(spelled, term)
        self.cue_terms = list(cue_entries)
        self.cue_labels = [cue_entries[t] for t in self.cue_terms]
        self.cue_ac = ahocorasick_rs.AhoCorasick(self.cue_terms)
        self.mod_terms = list(mod_entries)
        self.mod_labels = [mod_entries[t] for t in self.mod_terms]
        self.mod_ac = ahocorasick_rs.AhoCorasick(self.mod_terms)
        self.pin_terms = list(self.phonetic)
        self.phonetic_by_first: dict[str, list[tuple[str, list[str], list[tuple[str, int]]]]] = {}
        for spelled, term in chars.items():
            syllables = [table.get(c, c) for c in term]
            self.phonetic_by_first.setdefault(term[0], []).append((term, syllables, self.phonetic[spelled]))
        firsts = "".join(self.phonetic_by_first)
        self.first_char_re = re.compile("[" + re.escape(firsts) + "]") if firsts else None
        self.pin_ac = ahocorasick_rs.AhoCorasick(self.pin_terms) if self.pin_terms else None
        self.caps = {name: RiskLevel(block.get("cap", "critical")).rank for name, block in spec["types"].items()}



def phonetic_hits(lex: "CompiledLexicon", folded: str, exact: list[Hit]) -> list[Hit]:
    """Cues disguised by a homophone or by pinyin (跳搂, 煤气泄露, 自sha, tiao lou) that exact matching missed.

    A swap must keep the word's first character and all but one of the rest, and only words of three or more
    characters are tried (嗓子沙哑 is not 自杀, 自沙溪 is not 自杀); two-character evasions (跳搂) are listed in the
    lexicon. Pinyin is read only where the text has a run of two or more Latin letters.
    """
    readings = pinyin_readings()
    spans: list[tuple[str, int, int, int]] = []
    for match in lex.first_char_re.finditer(folded):
        start = match.start()
        for term, syllables, entries in lex.phonetic_by_first[folded[start]]:
            candidate = folded[start : start + len(term)]
            # two-character words are left to the lexicon's listed variants: 自沙溪 (since 沙溪) is not 自杀
            same = sum(a == b for a, b in zip(candidate, term))
            if len(term) >= 3 and len(candidate) == len(term) and candidate != term and same >= len(term) - 1:
                if all(syl in readings.get(c, ()) for c, syl in zip(candidate, syllables)):
                    spans.extend((name, level, start, start + len(term)) for name, level in entries)
    if lex.pin_ac is not None and _LATIN_RUN.search(folded):
        spelled, where, starts = to_pinyin(folded)
        for index, start, end in lex.pin_ac.find_matches_as_indexes(spelled, overlapping=True):
            if start not in starts or (end < len(spelled) and end not in starts and spelled[end] != "|"):
                continue
            begin, finish = where[start], where[end - 1] + 1
            if any("a" <= c <= "z" for c in folded[begin:finish]):
                spans.extend((name, level, begin, finish) for name, level in lex.phonetic[lex.pin_terms[index]])
    found = []
    for name, level, begin, finish in spans:
        if not any(h.type == name and h.start < finish and begin < h.end for h in exact):
            found.append(Hit(name, level, begin, finish))
    return found



def fold_term(term: str) -> str:
    folded = fold(str(term))[0]
    if not folded:
        raise BundleError(f"empty term {term!r} in the risk lexicon")
    return folded


def has_intent(between: str) -> bool:
    """A first-person threat between a modifier and a cue ('如果再不解决我就…') keeps the cue live."""
    return any(marker in between for marker in _FIRST_PERSON_INTENT)


def bounds(ends: list[int], position: int, length: int) -> tuple[int, int]:
    """The [start, end) of the sentence or clause holding `position`, given the sorted delimiter offsets."""
    i = bisect.bisect_right(ends, position)
    start = ends[i - 1] + 1 if i > 0 else 0
    end = ends[i] if i < len(ends) else length
    return start, end


def near(
    spans: list[tuple[int, int]],
    lo: int,
    hi: int,
    *,
    before: bool = False,
    skip: tuple[int, int] | None = None,
    skip_inside: bool = False,
):
    """The first span inside [lo, hi) (ending by `hi` when `before`) other than `skip` (with `skip_inside`, not
    inside it); else None."""
    for s, e in spans:
        if s >= lo and (e <= hi if before else s < hi):
            if skip == (s, e):  # a cue that is also a booster word does not lift itself
                continue
            if skip_inside and skip is not None and skip[0] <= s and e <= skip[1]:
                continue
            return s, e
    return None


def rule_levels(
    lex: CompiledLexicon, folded: str, windows: Windows
) -> tuple[dict, dict, set[str], list[tuple[int, int]], set[str]]:
    """What the rules see: per type the level reached and the folded spans behind each level; the types with a
    live (not suppressed) cue; the sentences holding any cue; the types the classifier may raise."""
    sentence_ends = [m.start() for m in _SENTENCE_END.finditer(folded)]
    clause_ends = [m.start() for m in _CLAUSE_END.finditer(folded)]
    hits: list[Hit] = []
    excluded: list[tuple[int, int]] = []
    for index, start, end in lex.cue_ac.find_matches_as_indexes(folded, overlapping=True):
        for name, level in lex.cue_labels[index]:
            if name == "_exclude":
                excluded.append((start, end))
            else:
                alone = lex.cue_terms[index] in lex.standalone.get(name, ())
                hits.append(Hit(name, level, start, end, alone))
    for name, level, pattern in lex.cue_regex:
        # a regex cue at high or above that names the person (孩子被打) needs no person word nearby
        people = lex.requires_terms.get(name, ())
        hits.extend(
            Hit(name, level, m.start(), m.end(), level >= 3 and (not people or any(p in m.group() for p in people)))
            for m in pattern.finditer(folded)
        )
    if lex.first_char_re is not None:
        hits.extend(phonetic_hits(lex, folded, hits))
    excluded.extend(m.span() for m in _TITLE.finditer(folded))  # 《自杀小队》 is a film, not a plan
    hits = [h for h in hits if not any(s < h.end and h.start < e for s, e in excluded)]
    hit_types = {h.type for h in hits}
    mods: dict[str, list[tuple[int, int]]] = {}
    for index, start, end in lex.mod_ac.find_matches_as_indexes(folded, overlapping=True):
        for label in lex.mod_labels[index]:
            mods.setdefault(label, []).append((start, end))
    for name, kind, pattern in lex.booster_regex:
        if name in hit_types:  # boosters only act on a cue of their own type
            mods.setdefault(f"{name}:{kind}", []).extend(m.span() for m in pattern.finditer(folded))

    levels: dict[str, int] = {}
    evidence: dict[str, dict[int, list[tuple[int, int]]]] = {}
    unsuppressed: set[str] = set()
    for hit in hits:
        spans = [(hit.start, hit.end)]
        sent = bounds(sentence_ends, hit.start, len(folded))
        clause = bounds(clause_ends, hit.start, len(folded))
        if hit.type in lex.requires and not hit.standalone:
            window = lex.requires[hit.type]
            person = near(mods.get(f"{hit.type}:requires", []), hit.start - window, hit.end + window)
            if person is None:
                continue
            spans.append(person)
        level = hit.level
        if _suppressed(folded, hit, mods, sent, clause, windows):
            level = 1
        else:
            unsuppressed.add(hit.type)
            lo, hi = max(sent[0], hit.start - windows.booster), min(sent[1], hit.end + windows.booster)
            critical = near(mods.get(f"{hit.type}:to_critical", []), lo, hi, skip=(hit.start, hit.end))
            # a date or a number inside the cue itself does not lift it (一个人住 holds 一个人); an injury word inside
            # one may make it critical (压住了 holds 压住)
            lift = near(mods.get(f"{hit.type}:to_high", []), lo, hi, skip=(hit.start, hit.end), skip_inside=True)
            if level >= 2 and critical is not None:
                level = 4
                spans.append(critical)
            elif level == 2 and lift is not None:
                level = 3
                spans.append(lift)
            urgent = mods.get("urgent")
            if level == 3 and urgent:  # a caller or dispatcher says it cannot wait: 【紧急】, 请立即派人
                level = 4
                spans.append(urgent[0])
            capped = near(mods.get("past", []), clause[0], hit.end)
            if capped is None and hit.type in ("public_safety", "gathering", "escalation"):
                capped = near(mods.get("recurring", []), clause[0], hit.end)
            if capped is None:  # 火灾和电梯困人时有发生, 漏过一次气: the marker follows the cue
                capped = near(mods.get("past_after", []), hit.start, clause[1])
            if capped is not None and level > 2:
                level = 2
                spans.append(capped)
        level = min(level, lex.caps[hit.type])
        if level > levels.get(hit.type, 0):
            levels[hit.type] = level
        evidence.setdefault(hit.type, {}).setdefault(level, []).extend(spans)
    sentences = sorted({bounds(sentence_ends, h.start, len(folded)) for h in hits})
    # a type that needs a kind of person (vulnerable) is never raised by the classifier without one; in a text that
    # takes its words back or calls the matter over (虚惊一场, 撤回此前求助) only types with a live cue may be raised
    eligible = {t for t in lex.types if t not in lex.requires or mods.get(f"{t}:requires")}
    if mods.get("joking"):
        eligible &= unsuppressed
    return levels, evidence, unsuppressed, sentences, eligible

def modifier_spans(lex: CompiledLexicon, folded: str, labels: tuple[str, ...]) -> list[tuple[int, int]]:
    """Folded spans of the shared modifiers with these labels (past, recurring, negation …) anywhere in the text."""
    wanted = set(labels)
    return [
        (start, end)
        for index, start, end in lex.mod_ac.find_matches_as_indexes(folded, overlapping=True)
        if wanted.intersection(lex.mod_labels[index])
    ]


def _suppressed(folded: str, hit: Hit, mods, sent, clause, windows: Windows) -> bool:
    """Negated, hypothetical, reported or taken back as a joke: the cue is about no one here and now. A reporting
    word inside the name of a news outlet (新闻客户端的记者, 报社记者) is where the petitioner goes, not a story."""
    lo = max(clause[0], hit.start - windows.negation)
    for s, e in mods.get("negation", []):  # 没有闻到 may overlap 闻到煤气
        if lo <= s < hit.start and e <= hit.end and not has_intent(folded[e : hit.start]):
            return True
    lo = max(clause[0], hit.start - windows.hypothetical)
    hypothetical = near(mods.get("hypothetical", []), lo, hit.start, before=True)
    if hypothetical is not None and not has_intent(folded[hypothetical[1] : hit.start]):
        return True
    media = mods.get("media_outlet", [])
    after = near(_outside(mods.get("reported_after", []), media), hit.end, min(sent[1], hit.end + 8))
    if after is None and not has_intent(folded[sent[0] : hit.start]):  # 我就去跳河，到时候看谁负责 is a threat
        after = near(mods.get("hypothetical_after", []), hit.end, min(sent[1], hit.end + 20))
        if after is None:  # 该怎么办 in the cue's own clause only: after a comma it asks for help with what is there
            after = near(mods.get("appeal_after", []), hit.end, min(clause[1], hit.end + 20))
            if after is not None and "了" in folded[hit.end : after[0]]:
                after = None  # 家里着火了怎么办: a state now, not 发生火灾时怎么办
    if after is not None or near(mods.get("joking", []), sent[0], sent[1]) is not None:
        return True
    reported = near(
        _outside(mods.get("reported", []), media), max(sent[0], hit.start - windows.reported), hit.start, before=True
    )
    if reported is not None:
        if reported[1] <= clause[0] and _speaker_again(folded[clause[0] : hit.start]):
            return False  # 听说隔壁拆迁给了三百万，我也不想活了: the report ended, the petitioner speaks of themselves
        return not (has_intent(folded[reported[1] : hit.start]) or close_person_speaks(folded, mods, sent, reported, hit))
    return False


def _speaker_again(clause_head: str) -> bool:
    """A clause opened by the petitioner ('我…', not '我们…', which is as often the story's crowd as the group)."""
    head = clause_head.lstrip(" ，,、")
    return head.startswith("我") and not head.startswith("我们")


def _outside(spans: list[tuple[int, int]], others: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans that overlap none of `others`."""
    if not others:
        return spans
    return [(s, e) for s, e in spans if not any(a < e and s < b for a, b in others)]


def close_person_speaks(folded: str, mods, sent, reported: tuple[int, int], hit: Hit) -> bool:
    """Reported speech that is a close person's own words, not news or a stranger's story: 我女儿在网上说她不想活了,
    听说隔壁老人说他不想活了. A relative, a neighbour or a pupil who says online or in a message that they mean to die
    is a person at risk; 新闻里说有人跳楼, 听说有人跳楼 and 电影里 are not.

    Holds when the reporting word is a channel (网上说, 朋友圈, 听说), not news or fiction (`reported_media`); no
    stranger (有人, 有个, 一个人 …) stands between it and the cue; and a close person (`close_person`) either stands
    just before it (女儿在网上说) or, between it and the cue, is followed by a word of saying or meaning (邻居老人说)."""
    if any(s < reported[1] and reported[0] < e for s, e in mods.get("reported_media", [])):
        return False
    between = folded[reported[1] : hit.start]
    if any(marker in between for marker in _STRANGERS):
        return False
    people = mods.get("close_person", [])
    if near(people, max(sent[0], reported[0] - _CLOSE_PERSON_BEFORE), reported[0] + 1, before=True) is not None:
        return True
    return any(
        _SAYS.match(folded, e, min(hit.start, e + 6)) is not None
        for s, e in people
        if reported[1] <= s and e <= hit.start
    )
