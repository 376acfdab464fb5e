"""Risk flags (风险识别): which petitions must reach a person in minutes, of what type, how urgent, and why.

Types are defined in one place, `corpora/risk/lexicon.yaml`: self_harm (自杀、自残), violence (伤害他人), gathering
(群体性聚集: 集体上访、拉横幅、堵路), escalation (越级上访、进京、找媒体), public_safety (燃气泄漏、房屋开裂、电梯困人 …)
and vulnerable (独居老人无人照看、儿童受虐、断水断电断药、欠薪农民工生活无着). Adding a type is adding a block there.

Levels (triage.schemas.RiskLevel), highest flag wins:
    critical  life in danger now, or a method, time or place is named (今晚、已经站在楼顶、买好了木炭、有人被困)
    high      explicit intent or threat, conditional ones included (再不解决我就从楼上跳下去); an organised
              gathering or escalation with a date or numbers; an active hazard (煤气味两天了); a person in danger
    medium    a hazard or grievance that may grow, without immediacy: a past incident, a recurring fault, a
              crack, a missing manhole cover, a threat to "expose" without a plan
    low       distress or risk words without intent, and risk words that were negated, reported or hypothetical
    none      nothing found

How a level is reached:
1. Rules. Cues from the lexicon (Aho–Corasick, `ahocorasick_rs`, over a folded text: NFKC, traditional →
   simplified, lower case, evasion separators removed; plus a few regexes; plus homophone and pinyin spellings of
   chosen words: 跳搂, 煤气泄露, 自sha, tiao lou) each carry a base level. A cue inside an idiom or an ordinary
   compound (气死我了, 杀毒软件, 跳楼价, 拉横幅庆祝开业) is dropped; a negated (我不会想不开的), reported
   (新闻里说有人跳楼), hypothetical (防止…, 万一着火怎么办) or joking cue falls to low, unless a first-person threat
   stands between (如果再不解决我就跳楼); a past or recurring hazard is capped at medium. Boosters in the same
   sentence lift a cue: a date, numbers or a conditional threat make medium → high; immediacy or a method make it
   critical. Types with `requires` (vulnerable) count only next to a vulnerable person (老人, 孕妇, 透析 …).
2. Type classifier (risk_model.RiskTypeClassifier): catches phrasings the lexicon has no word for. It raises a type
   to high or medium when confident, with a stricter threshold where the rules saw nothing of that type, and never
   where the rules suppressed that type's words or a required person is missing.
3. Self-harm classifier (risk_model.SelfHarmClassifier, Weibo posts + our petitions): on texts where the rules saw
   a self-harm word, lifts the flag one level when it is confident a plan is named, or a live distress word to
   medium.
When in doubt the rules pick the higher level: recall first. Evidence offsets index the text as given.
"""

from __future__ import annotations

import bisect
import json
import pickle
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import ahocorasick_rs
import yaml

from triage.errors import BundleError, DataError, NotFitted
from triage.risk_model import RiskTypeClassifier, SelfHarmClassifier, fold, pinyin_readings, pinyin_table, to_pinyin
from triage.schemas import RiskEvidence, RiskFlag, RiskLevel, RiskOut

LEVELS = [RiskLevel.none, RiskLevel.low, RiskLevel.medium, RiskLevel.high, RiskLevel.critical]
_LEVEL_SCORE = {1: 0.3, 2: 0.5, 3: 0.75, 4: 0.92}
_SENTENCE_END = re.compile(r"[。！？!?；;\n]")
_CLAUSE_END = re.compile(r"[。！？!?；;\n，,、：:]")
_LATIN_RUN = re.compile(r"[a-z]{2,}")
_FIRST_PERSON_INTENT = ("我就", "我要", "再不", "我们就", "不然", "否则", "逼我")
BUNDLE_FORMAT = 1


def default_lexicon_path() -> Path:
    from triage.settings import get_settings

    return get_settings().corpora_dir / "risk" / "lexicon.yaml"


@dataclass(frozen=True)
class _Hit:
    type: str
    level: int
    start: int  # in the folded text
    end: int
    standalone: bool = False  # counts even where the type `requires` a word nearby


class _CompiledLexicon:
    """The lexicon turned into two automatons (cues, modifiers) and per-type regexes."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.types: list[str] = list(spec["types"])
        cue_entries: dict[str, list[tuple[str, int]]] = {}
        # terms are matched against folded text, so they are folded too (煤氣 or a spaced term still works)
        for term in map(_fold_term, spec.get("exclusions", [])):
            cue_entries.setdefault(term, []).append(("_exclude", 0))
        self.cue_regex: list[tuple[str, int, re.Pattern]] = []
        self.phonetic: dict[str, list[tuple[str, int]]] = {}
        mod_entries: dict[str, set[str]] = {}
        for kind, terms in spec.get("modifiers", {}).items():
            for term in map(_fold_term, terms):
                mod_entries.setdefault(term, set()).add(kind)
        self.booster_regex: list[tuple[str, str, re.Pattern]] = []
        self.requires: dict[str, int] = {}
        self.standalone: dict[str, set[str]] = {}
        table = pinyin_table()
        chars: dict[str, str] = {}
        for name, block in spec["types"].items():
            cue_level = {}
            for level_name, terms in (block.get("cues") or {}).items():
                for term in map(_fold_term, terms):
                    cue_entries.setdefault(term, []).append((name, RiskLevel(level_name).rank))
                    cue_level[term] = RiskLevel(level_name).rank
            for level_name, patterns in (block.get("cue_patterns") or {}).items():
                for pattern in patterns:
                    self.cue_regex.append((name, RiskLevel(level_name).rank, re.compile(pattern)))
            for kind in ("to_high", "to_critical", "requires"):
                for term in map(_fold_term, block.get(kind) or []):
                    mod_entries.setdefault(term, set()).add(f"{name}:{kind}")
            for kind in ("to_high", "to_critical"):
                for pattern in block.get(f"{kind}_patterns") or []:
                    self.booster_regex.append((name, kind, re.compile(pattern)))
            if block.get("requires"):
                self.requires[name] = int(block.get("requires_window", 40))
                self.standalone[name] = set(map(_fold_term, block.get("standalone") or []))
            if table:
                for term in map(_fold_term, block.get("phonetic") or []):
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


class RiskDetector:
    """Finds risk flags in petition texts: lexicon rules plus a learned self-harm level classifier.

    Parameters
    ----------
    lexicon_path: the YAML that defines types and cues (default: corpora/risk/lexicon.yaml). `fit` copies it in.
    booster_window: how far (chars, same sentence) a booster may stand from a cue it lifts.
    negation_window, hypothetical_window, reported_window: how far before a cue such a word still acts.
    lift_threshold: classifier P(plan named) at which a self-harm flag of high goes to critical and medium to high.
    model_only_threshold: classifier P(plan named) at which a self-harm distress word (low) becomes medium.
    model_min_chars: texts shorter than this are left to the rules: on a bare "我想跳楼" the classifier, trained on
        Weibo posts where naming a method scores ≥ 7, is confident for the wrong reason.
    classifier_c: inverse regularisation of the classifiers.
    type_high_threshold, type_medium_threshold: type-classifier probability at which a type the rules left lower is
        raised to high or medium when the rules saw a word of that type (never when they suppressed them all).
    type_alone_high_threshold, type_alone_medium_threshold: the same where the rules saw nothing of that type.
    type_max_chars: the type classifier reads a text this long whole; of a longer one, only the sentences where
        the lexicon saw something (a long letter with no risk word at all is not read, which keeps detect fast).
    """

    def __init__(
        self,
        *,
        lexicon_path: str | Path | None = None,
        booster_window: int = 40,
        negation_window: int = 8,
        hypothetical_window: int = 12,
        reported_window: int = 24,
        lift_threshold: float = 0.8,
        model_only_threshold: float = 0.9,
        model_min_chars: int = 12,
        classifier_c: float = 4.0,
        type_high_threshold: float = 0.5,
        type_medium_threshold: float = 0.35,
        type_alone_high_threshold: float = 0.8,
        type_alone_medium_threshold: float = 0.45,
        type_max_chars: int = 300,
    ):
        self.lexicon_path = lexicon_path
        self.booster_window = booster_window
        self.negation_window = negation_window
        self.hypothetical_window = hypothetical_window
        self.reported_window = reported_window
        self.lift_threshold = lift_threshold
        self.model_only_threshold = model_only_threshold
        self.model_min_chars = model_min_chars
        self.classifier_c = classifier_c
        self.type_high_threshold = type_high_threshold
        self.type_medium_threshold = type_medium_threshold
        self.type_alone_high_threshold = type_alone_high_threshold
        self.type_alone_medium_threshold = type_alone_medium_threshold
        self.type_max_chars = type_max_chars

    # ------------------------------------------------------------------------------------------------ fitting
    def fit(
        self,
        texts: Sequence[str] = (),
        levels: Sequence[int] = (),
        *,
        type_texts: Sequence[str] = (),
        type_labels: Sequence[str] = (),
    ) -> "RiskDetector":
        """Read the lexicon; train the self-harm classifier on (text, 0–10 level) pairs and the type classifier on
        (text, type or 'none') pairs when they are given. With neither, the detector is the lexicon alone."""
        path = Path(self.lexicon_path) if self.lexicon_path else default_lexicon_path()
        self.lexicon_yaml_ = path.read_text(encoding="utf-8")
        self._compile()
        self.classifier_ = SelfHarmClassifier(c=self.classifier_c).fit(texts, levels) if len(texts) else None
        self.type_classifier_ = None
        if len(type_texts):
            folded = [fold(t)[0] for t in type_texts]
            self.type_classifier_ = RiskTypeClassifier(c=self.classifier_c).fit(folded, type_labels, self.lexicon_.types)
        return self

    def _compile(self) -> None:
        try:
            self.lexicon_ = _CompiledLexicon(yaml.safe_load(self.lexicon_yaml_))
        except (yaml.YAMLError, KeyError, TypeError, ValueError, re.error) as exc:
            raise DataError(f"the risk lexicon is invalid: {exc}") from exc

    @property
    def types(self) -> list[str]:
        self._check_fitted()
        return list(self.lexicon_.types)

    def _check_fitted(self) -> None:
        if not hasattr(self, "lexicon_"):
            raise NotFitted("RiskDetector is not fitted: call fit() or RiskDetector.load()")

    # ---------------------------------------------------------------------------------------------- detection
    def detect(self, texts: Sequence[str]) -> list[RiskOut]:
        """One RiskOut per text; evidence offsets index into the text as given."""
        self._check_fitted()
        texts = [t or "" for t in texts]
        folded = [fold(t) for t in texts]
        rules = [self._rule_levels(f) if f.strip() else None for f, _ in folded]
        # The classifier reads only texts where the lexicon saw a self-harm word (at any level): it judges how
        # concrete the plan is, which is cheap to ask of a few texts and unreliable on ordinary complaints.
        asked = [
            i
            for i, r in enumerate(rules)
            if r is not None and "self_harm" in r[0] and len(folded[i][0]) >= self.model_min_chars
        ] if self.classifier_ is not None else []
        plan: dict[int, float] = {}
        if asked:
            probabilities = self.classifier_.plan_probability([folded[i][0] for i in asked], folded=True)
            plan = dict(zip(asked, probabilities.tolist()))
        if self.type_classifier_ is not None:
            self._apply_type_classifier([f for f, _ in folded], rules)
        return [self._assemble(texts[i], folded[i][1], rules[i], plan.get(i)) for i in range(len(texts))]

    def _apply_type_classifier(self, folded: list[str], rules: list) -> None:
        """Raise types the rules left low when the type classifier is confident (recall for unseen phrasings)."""
        read: list[int] = []
        inputs: list[str] = []
        for i, text in enumerate(folded):
            if rules[i] is None:
                continue
            if len(text) <= self.type_max_chars:
                inputs.append(text)
            elif rules[i][3]:
                inputs.append("。".join(text[a:b] for a, b in rules[i][3])[: self.type_max_chars])
            else:
                continue
            read.append(i)
        if not read:
            return
        probabilities, features = self.type_classifier_.predict_proba(inputs)
        for row, i in enumerate(read):
            levels, evidence, unsuppressed, _, eligible = rules[i]
            for j, name in enumerate(self.type_classifier_.types_):
                p = probabilities[row, j]
                if name not in eligible or (name in levels and name not in unsuppressed):
                    continue  # negated, reported or hypothetical words of this type, or no person it needs
                seen = name in levels
                high_at = self.type_high_threshold if seen else self.type_alone_high_threshold
                medium_at = self.type_medium_threshold if seen else self.type_alone_medium_threshold
                target = 3 if p >= high_at else 2 if p >= medium_at else 0
                target = min(target, self.lexicon_.caps[name])
                if target > levels.get(name, 0):
                    spans = self.type_classifier_.explain(inputs[row], features[row], j)
                    if len(folded[i]) > self.type_max_chars:  # spans index the joined sentences: find them again
                        spans = [(at, at + b - a) for a, b in spans if (at := folded[i].find(inputs[row][a:b])) >= 0]
                    levels[name] = target
                    evidence.setdefault(name, {})[target] = spans
                    unsuppressed.add(name)

    def _assemble(self, text: str, where: list[int], rules, plan_prob: float | None) -> RiskOut:
        if rules is None:
            return RiskOut()
        levels, evidence, unsuppressed, _, _ = rules
        if plan_prob is not None and "self_harm" in unsuppressed:
            current = levels["self_harm"]
            if current >= 2 and plan_prob >= self.lift_threshold:
                levels["self_harm"] = min(current + 1, 4)
                evidence["self_harm"][levels["self_harm"]] = evidence["self_harm"][current]
            elif current == 1 and plan_prob >= self.model_only_threshold:
                levels["self_harm"] = 2
                evidence["self_harm"][2] = evidence["self_harm"][1]
        flags = []
        for name in self.lexicon_.types:
            level = min(levels.get(name, 0), self.lexicon_.caps[name])
            if level == 0:
                continue
            spans = sorted(set(evidence.get(name, {}).get(level, [])))[:6]
            score = _LEVEL_SCORE[level]
            if name == "self_harm" and plan_prob is not None:
                score = min(1.0, score + 0.08 * plan_prob)
            flags.append(
                RiskFlag(
                    type=name,
                    level=LEVELS[level],
                    score=round(score, 4),
                    evidence=[_evidence(text, where, s, e) for s, e in spans],
                )
            )
        flags.sort(key=lambda f: (-f.level.rank, -f.score))
        return RiskOut(level=flags[0].level if flags else RiskLevel.none, flags=flags)

    def _rule_levels(self, folded: str) -> tuple[dict, dict, set[str], list[tuple[int, int]], set[str]]:
        """What the rules see: per type the level reached and the folded spans behind each level; the types with a
        live (not suppressed) cue; the sentences holding any cue; the types the classifier may raise."""
        lex = self.lexicon_
        sentence_ends = [m.start() for m in _SENTENCE_END.finditer(folded)]
        clause_ends = [m.start() for m in _CLAUSE_END.finditer(folded)]
        hits: list[_Hit] = []
        excluded: list[tuple[int, int]] = []
        for index, start, end in lex.cue_ac.find_matches_as_indexes(folded, overlapping=True):
            for name, level in lex.cue_labels[index]:
                if name == "_exclude":
                    excluded.append((start, end))
                else:
                    alone = lex.cue_terms[index] in lex.standalone.get(name, ())
                    hits.append(_Hit(name, level, start, end, alone))
        for name, level, pattern in lex.cue_regex:
            hits.extend(_Hit(name, level, m.start(), m.end(), level >= 3) for m in pattern.finditer(folded))
        if lex.first_char_re is not None:
            hits.extend(self._phonetic_hits(folded, hits))
        hits = [h for h in hits if not any(s < h.end and h.start < e for s, e in excluded)]
        mods: dict[str, list[tuple[int, int]]] = {}
        for index, start, end in lex.mod_ac.find_matches_as_indexes(folded, overlapping=True):
            for label in lex.mod_labels[index]:
                mods.setdefault(label, []).append((start, end))
        for name, kind, pattern in lex.booster_regex:
            mods.setdefault(f"{name}:{kind}", []).extend(m.span() for m in pattern.finditer(folded))

        levels: dict[str, int] = {}
        evidence: dict[str, dict[int, list[tuple[int, int]]]] = {}
        unsuppressed: set[str] = set()
        for hit in hits:
            spans = [(hit.start, hit.end)]
            sent = _bounds(sentence_ends, hit.start, len(folded))
            clause = _bounds(clause_ends, hit.start, len(folded))
            if hit.type in lex.requires and not hit.standalone:
                window = lex.requires[hit.type]
                person = _near(mods.get(f"{hit.type}:requires", []), hit.start - window, hit.end + window)
                if person is None:
                    continue
                spans.append(person)
            level = hit.level
            if self._suppressed(folded, hit, mods, sent, clause):
                level = 1
            else:
                unsuppressed.add(hit.type)
                lo, hi = max(sent[0], hit.start - self.booster_window), min(sent[1], hit.end + self.booster_window)
                critical = _near(mods.get(f"{hit.type}:to_critical", []), lo, hi, skip=(hit.start, hit.end))
                lift = _near(mods.get(f"{hit.type}:to_high", []), lo, hi, skip=(hit.start, hit.end))
                if level >= 2 and critical is not None:
                    level = 4
                    spans.append(critical)
                elif level == 2 and lift is not None:
                    level = 3
                    spans.append(lift)
                capped = _near(mods.get("past", []), clause[0], hit.end)
                if capped is None and hit.type in ("public_safety", "gathering", "escalation"):
                    capped = _near(mods.get("recurring", []), clause[0], hit.end)
                if capped is not None and level > 2:
                    level = 2
                    spans.append(capped)
            level = min(level, lex.caps[hit.type])
            if level > levels.get(hit.type, 0):
                levels[hit.type] = level
            evidence.setdefault(hit.type, {}).setdefault(level, []).extend(spans)
        sentences = sorted({_bounds(sentence_ends, h.start, len(folded)) for h in hits})
        # a type that needs a kind of person (vulnerable) is never raised by the classifier without one
        eligible = {t for t in lex.types if t not in lex.requires or mods.get(f"{t}:requires")}
        return levels, evidence, unsuppressed, sentences, eligible

    def _suppressed(self, folded: str, hit: _Hit, mods, sent, clause) -> bool:
        """Negated, hypothetical, reported or taken back as a joke: the cue is about no one here and now."""
        lo = max(clause[0], hit.start - self.negation_window)
        for s, e in mods.get("negation", []):  # 没有闻到 may overlap 闻到煤气
            if lo <= s < hit.start and e <= hit.end and not _has_intent(folded[e : hit.start]):
                return True
        lo = max(clause[0], hit.start - self.hypothetical_window)
        hypothetical = _near(mods.get("hypothetical", []), lo, hit.start, before=True)
        if hypothetical is not None and not _has_intent(folded[hypothetical[1] : hit.start]):
            return True
        after = _near(mods.get("reported_after", []), hit.end, min(sent[1], hit.end + 8))
        if after is None:
            after = _near(mods.get("hypothetical_after", []), hit.end, min(sent[1], hit.end + 20))
        if after is not None or _near(mods.get("joking", []), sent[0], sent[1]) is not None:
            return True
        reported = _near(mods.get("reported", []), max(sent[0], hit.start - self.reported_window), hit.start, before=True)
        if reported is not None:
            return not _has_intent(folded[reported[1] : hit.start])
        return False

    def _phonetic_hits(self, folded: str, exact: list[_Hit]) -> list[_Hit]:
        """Cues disguised by a homophone or by pinyin (跳搂, 煤气泄露, 自sha, tiao lou) that exact matching missed.

        A swap must keep the word's first character and all but one of the rest, and only words of three or more
        characters are tried (嗓子沙哑 is not 自杀, 自沙溪 is not 自杀); two-character evasions (跳搂) are listed in the
        lexicon. Pinyin is read only where the text has a run of two or more Latin letters.
        """
        lex = self.lexicon_
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
                found.append(_Hit(name, level, begin, finish))
        return found

    # ------------------------------------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write lexicon.yaml, the classifier and manifest.json to `directory` (created; must not hold a bundle)."""
        self._check_fitted()
        directory = Path(directory)
        if (directory / "manifest.json").exists():
            raise BundleError(f"{directory} already holds a risk bundle; bundles are never overwritten")
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        (staging / "lexicon.yaml").write_text(self.lexicon_yaml_, encoding="utf-8")
        with open(staging / "detector.pkl", "wb") as fh:
            state = {"params": self.get_params(), "classifier": self.classifier_, "type_classifier": self.type_classifier_}
            pickle.dump(state, fh)
        manifest = {
            "component": "risk",
            "format": BUNDLE_FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "types": self.types,
            "has_classifier": self.classifier_ is not None,
            "has_type_classifier": self.type_classifier_ is not None,
            "versions": _library_versions(),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        if directory.exists():
            directory.rmdir()  # only an empty directory may be replaced
        staging.rename(directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "RiskDetector":
        """Load a bundle written by `save`; it needs nothing from corpora/ at run time."""
        directory = Path(directory)
        manifest_path = directory / "manifest.json"
        if not manifest_path.exists():
            raise BundleError(f"{directory} has no manifest.json: not a risk bundle")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("component") != "risk" or manifest.get("format") != BUNDLE_FORMAT:
            found = f"{manifest.get('component')}/{manifest.get('format')}"
            raise BundleError(f"{directory} holds a {found} bundle; this library reads risk/{BUNDLE_FORMAT}")
        with open(directory / "detector.pkl", "rb") as fh:
            state = pickle.load(fh)
        detector = cls(**{**state["params"], "lexicon_path": directory / "lexicon.yaml"})
        detector.lexicon_yaml_ = (directory / "lexicon.yaml").read_text(encoding="utf-8")
        detector._compile()
        detector.classifier_ = state["classifier"]
        detector.type_classifier_ = state.get("type_classifier")
        return detector

    def get_params(self) -> dict:
        return {
            "lexicon_path": None,
            "booster_window": self.booster_window,
            "negation_window": self.negation_window,
            "hypothetical_window": self.hypothetical_window,
            "reported_window": self.reported_window,
            "lift_threshold": self.lift_threshold,
            "model_only_threshold": self.model_only_threshold,
            "model_min_chars": self.model_min_chars,
            "classifier_c": self.classifier_c,
            "type_high_threshold": self.type_high_threshold,
            "type_medium_threshold": self.type_medium_threshold,
            "type_alone_high_threshold": self.type_alone_high_threshold,
            "type_alone_medium_threshold": self.type_alone_medium_threshold,
            "type_max_chars": self.type_max_chars,
        }


def _fold_term(term: str) -> str:
    folded = fold(str(term))[0]
    if not folded:
        raise BundleError(f"empty term {term!r} in the risk lexicon")
    return folded


def _has_intent(between: str) -> bool:
    """A first-person threat between a modifier and a cue ('如果再不解决我就…') keeps the cue live."""
    return any(marker in between for marker in _FIRST_PERSON_INTENT)


def _bounds(ends: list[int], position: int, length: int) -> tuple[int, int]:
    """The [start, end) of the sentence or clause holding `position`, given the sorted delimiter offsets."""
    i = bisect.bisect_right(ends, position)
    start = ends[i - 1] + 1 if i > 0 else 0
    end = ends[i] if i < len(ends) else length
    return start, end


def _near(spans: list[tuple[int, int]], lo: int, hi: int, *, before: bool = False, skip: tuple[int, int] | None = None):
    """The first span inside [lo, hi) (ending by `hi` when `before`) other than `skip`; else None."""
    for s, e in spans:
        if s >= lo and (e <= hi if before else s < hi):
            if skip == (s, e):  # a cue that is also a booster word does not lift itself
                continue
            return s, e
    return None


def _evidence(text: str, where: list[int], start: int, end: int) -> RiskEvidence:
    begin, finish = where[start], where[end - 1] + 1
    return RiskEvidence(text=text[begin:finish], start=begin, end=finish)


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("scikit-learn", "ahocorasick-rs", "opencc", "pypinyin", "jieba", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "absent"
    return out


def train_detector(data_dir: str | Path | None = None, corpora_dir: str | Path | None = None, **params) -> RiskDetector:
    """Build the production detector: lexicon from `corpora_dir`, self-harm classifier on the shared data plus our
    petition examples (their `train` split only: `val` stays unseen for bench/risk.py)."""
    from triage.risk_model import self_harm_training_set, type_training_set
    from triage.settings import get_settings

    settings = get_settings()
    data_dir = Path(data_dir) if data_dir else settings.data_dir
    corpora_dir = Path(corpora_dir) if corpora_dir else settings.corpora_dir
    texts, levels = self_harm_training_set(data_dir, corpora_dir)
    type_texts, type_labels = type_training_set(data_dir, corpora_dir)
    params.setdefault("lexicon_path", corpora_dir / "risk" / "lexicon.yaml")
    return RiskDetector(**params).fit(texts, levels, type_texts=type_texts, type_labels=type_labels)


train = train_detector
