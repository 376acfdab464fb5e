"""Risk flags (风险识别): which petitions must reach a person in minutes, of what type, how urgent, and why.

Types are defined in one place, `corpora/risk/lexicon.yaml`: self_harm (自杀、自残), violence (伤害他人), gathering
(群体性聚集: 集体上访、拉横幅、堵路), escalation (越级上访、进京、找媒体), public_safety (燃气泄漏、房屋开裂、电梯困人 …)
and vulnerable (独居老人无人照看、儿童受虐、断水断电断药、欠薪农民工生活无着). Adding a type is adding a block there.

Levels (triage.schemas.RiskLevel), highest flag wins:
    critical  life in danger now, or a method, time or place is named (今晚、明天一早、已经站在楼顶、买好了木炭、
              遗书都写好了), the act is under way (正在、现在就), people trapped or hurt now (有人被困、掉下去受伤了)
    high      explicit intent or threat, conditional ones included (再不解决我就从楼上跳下去); an organised
              gathering or escalation with a date or numbers; an active hazard (煤气味两天了, 电线断了垂在路上);
              a person in danger (独居老人好几天没开门)
    medium    a hazard or grievance that may grow, without immediacy: a past or recurring incident (去年漏过一次气,
              火灾时有发生), a crack, a missing manhole cover, a threat to "expose" without a plan
    low       distress or risk words without intent, and risk words that were negated, reported, hypothetical,
              joking or taken back (…但表示不会做傻事)
    none      nothing found

How a level is reached:
1. Rules (risk_lexicon.rule_levels). Cues from the lexicon (Aho–Corasick, `ahocorasick_rs`, over a folded text:
   NFKC, traditional → simplified, lower case, evasion separators removed; plus regexes; plus homophone and pinyin
   spellings of chosen words: 跳搂, 煤气泄露, 自sha, tiao lou) each carry a base level. A cue inside an idiom or an
   ordinary compound (气死我了, 杀毒软件, 跳楼价, 拉横幅庆祝开业) is dropped; a negated, reported, hypothetical,
   joking or satirical cue falls to low, unless a first-person threat stands between (如果再不解决我就跳楼) or the
   reported words are a close person's own (我女儿在网上说她不想活了; not 新闻里说有人跳楼, 听说有人跳楼); a past
   or recurring marker in the clause (去年, 曾经, 时有发生, 多次发生) caps it at medium. Boosters in the same
   sentence lift a cue: a date, numbers or a conditional threat make medium → high; immediacy, a method, a place or
   an injury now make it critical, and so does an urgent call anywhere in the text (【紧急】, 请立即派人) for a cue
   already at high. Types with `requires` (vulnerable) count only next to a vulnerable person (老人, 孕妇, 透析 …).
2. Type classifier (risk_model.RiskTypeClassifier): catches phrasings the lexicon has no word for. It raises a type
   to high or medium when confident; where the rules saw nothing of that type it is a second opinion only (a
   stricter threshold, and never above medium on a very short text); never where the rules suppressed that type's
   words or a required person is missing. A long text with no lexicon word is read in a few windows, so a risk
   sentence buried in an ordinary complaint is still seen.
3. Semantic head (risk_model.SemanticRiskClassifier over multilingual USE sentence embeddings, triage.similarity
   .Encoder "use"): asked only of texts where steps 1–2 left everything below high, that hold at least
   `semantic_min_chars` Chinese characters, and where the rules saw some risk word or the n-gram classifier gave
   some type `semantic_gate` (USE costs ≈ 5–10 ms a text). It raises a type to high when confident, under the
   type classifier's vetoes (suppressed words, a missing person) and one more: not when the sentence it would cite
   holds a past or recurring marker. Its evidence is that sentence. It carries recall to phrasings neither the
   lexicon nor the n-grams were written with (整个村的人都去省城讨个说法).
4. Self-harm classifier (risk_model.SelfHarmClassifier, Weibo posts + our petitions): on texts where the rules saw
   a self-harm word, lifts the flag one level when it is confident a plan is named, or a live distress word to
   medium.
5. Level model (risk_model.RiskLevelModel), when the detector was built by `train_detector`: for each type, P(high
   or above) from what steps 1–4 found (the level reached, the rules' own level, both classifiers' probabilities,
   negated or reported words, length, the plan probability), learned on out-of-fold outputs over our training rows.
   At `level_threshold` or above a type is high; below it, a high from steps 1–4 falls to medium. A critical stays
   critical, a high the rules reached through a pinyin or homophone spelling (自sha, zisha) is not lowered (the
   classifiers read it as written), and nothing is raised where the rules saw the type's words only negated,
   reported or hypothetical, or where the person it needs is missing. It reads only texts the semantic head read
   (at least `level_min_chars` Chinese characters): on shorter ones (我要自杀, 着火了) steps 1–4 decide alone.
   Each part's threshold was set on its own; this one weighs them together.
When in doubt the rules pick the higher level: recall first. Evidence offsets index the text as given.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from triage.errors import BundleError, DataError, NotFitted
from triage.risk_lexicon import (
    CompiledLexicon,
    Windows,
    default_lexicon_path,
    fold,
    modifier_spans,
    phonetic_hits,
    rule_levels,
)
from triage.risk_model import (
    RiskLevelModel,
    RiskTypeClassifier,
    SelfHarmClassifier,
    SemanticRiskClassifier,
    sentence_spans,
)
from triage.schemas import RiskEvidence, RiskFlag, RiskLevel, RiskOut

_PAST_LABELS = ("past", "past_after", "recurring")
# the semantic head is also not trusted on a sentence that takes its words back or says the matter is over
# (虚惊一场, 已经补上了, 撤回此前求助): it reads the topic, not whether the danger is still there
_SEMANTIC_VETO_LABELS = _PAST_LABELS + ("joking",)
LEVELS = [RiskLevel.none, RiskLevel.low, RiskLevel.medium, RiskLevel.high, RiskLevel.critical]
_LEVEL_SCORE = {1: 0.3, 2: 0.5, 3: 0.75, 4: 0.92}
BUNDLE_FORMAT = 1


class RiskDetector:
    """Finds risk flags in petition texts: lexicon rules, an n-gram type classifier, a semantic head, a self-harm
    level classifier.

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
        the lexicon saw something, or (none) its first `type_windows` windows of this many characters.
    type_windows: how many windows of a long text with no lexicon word the type classifier reads.
    type_alone_min_chars: where the rules saw no word of a type, a text shorter than this is raised to medium at
        most (on a few characters the classifier is confident for the wrong reasons).
    semantic_encoder: the triage.similarity.Encoder backend the semantic head reads ("use"); its weights come from
        the installed package, never from the bundle.
    semantic_threshold: semantic P(type) at which a type is raised to high.
    semantic_min_chars: texts with fewer Chinese characters than this are not read by the semantic head.
    semantic_gate: of texts where the rules saw no risk word, the semantic head reads only those the n-gram type
        classifier gives some type at least this probability (0: every text).
    semantic_sentence_threshold: semantic P(type) of one sentence at which a type is raised to high (above 1: off).
    semantic_sentence_min_chars: texts at least this long are also read sentence by sentence.
    semantic_past_veto: no semantic raise when the sentence it would cite holds a past or recurring marker (去年,
        上个月, 时不时, 过一次) or takes its words back (虚惊一场, 已经补上了): the head cannot read tense, and a past
        incident is medium.
    semantic_max_chars: the semantic head reads the first this many characters of the folded text.
    semantic_c: inverse regularisation of the semantic head.
    level_threshold: with a level model (trained by `train_detector`), P(high or above) at which a type is at
        high; below it a high the other parts gave falls to medium. A critical is never lowered.
    level_min_chars: the level model reads only texts the semantic head read that hold at least this many Chinese
        characters; on shorter ones the other parts decide alone.
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
        classifier_c: float = 8.0,
        type_high_threshold: float = 0.6,
        type_medium_threshold: float = 0.35,
        type_alone_high_threshold: float = 0.8,
        type_alone_medium_threshold: float = 0.45,
        type_max_chars: int = 300,
        type_windows: int = 3,
        type_alone_min_chars: int = 10,
        semantic_encoder: str = "use",
        semantic_threshold: float = 0.5,
        semantic_min_chars: int = 8,
        semantic_gate: float = 0.1,
        semantic_sentence_threshold: float = 1.01,
        semantic_sentence_min_chars: int = 60,
        semantic_past_veto: bool = True,
        semantic_max_chars: int = 400,
        semantic_c: float = 16.0,
        level_threshold: float = 0.3,
        level_min_chars: int = 8,
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
        self.type_windows = type_windows
        self.type_alone_min_chars = type_alone_min_chars
        self.semantic_encoder = semantic_encoder
        self.semantic_threshold = semantic_threshold
        self.semantic_min_chars = semantic_min_chars
        self.semantic_gate = semantic_gate
        self.semantic_sentence_threshold = semantic_sentence_threshold
        self.semantic_sentence_min_chars = semantic_sentence_min_chars
        self.semantic_past_veto = semantic_past_veto
        self.semantic_max_chars = semantic_max_chars
        self.semantic_c = semantic_c
        self.level_threshold = level_threshold
        self.level_min_chars = level_min_chars
        self.level_model_ = None
        self._encoder = None

    # ------------------------------------------------------------------------------------------------ fitting
    def fit(
        self,
        texts: Sequence[str] = (),
        levels: Sequence[int] = (),
        *,
        type_texts: Sequence[str] = (),
        type_labels: Sequence[str] = (),
        semantic_texts: Sequence[str] = (),
        semantic_labels: Sequence[str] = (),
        semantic_weights: Sequence[float] | None = None,
    ) -> "RiskDetector":
        """Read the lexicon; train the self-harm classifier on (text, 0–10 level) pairs, the type classifier and the
        semantic head on (text, type or 'none') pairs, each when its data is given. With none, the detector is the
        lexicon alone."""
        path = Path(self.lexicon_path) if self.lexicon_path else default_lexicon_path()
        self.lexicon_yaml_ = path.read_text(encoding="utf-8")
        self._compile()
        self.classifier_ = SelfHarmClassifier(c=self.classifier_c).fit(texts, levels) if len(texts) else None
        self.type_classifier_ = None
        if len(type_texts):
            folded = [fold(t)[0] for t in type_texts]
            self.type_classifier_ = RiskTypeClassifier(c=self.classifier_c).fit(folded, type_labels, self.lexicon_.types)
        self.semantic_classifier_ = None
        self.level_model_ = None  # trained on out-of-fold outputs by train_detector, after this fit
        if len(semantic_texts):
            embeddings = self._embed([fold(t)[0] for t in semantic_texts])
            self.semantic_classifier_ = SemanticRiskClassifier(c=self.semantic_c).fit(
                embeddings, semantic_labels, self.lexicon_.types, sample_weight=semantic_weights
            )
        return self

    def attach_encoder(self, encoder) -> "RiskDetector":
        """Share an already loaded triage.similarity.Encoder (of backend `semantic_encoder`) instead of loading one."""
        if encoder.name != self.semantic_encoder:
            raise DataError(f"the semantic head was trained on {self.semantic_encoder!r} vectors, not {encoder.name!r}")
        self._encoder = encoder
        return self

    def _embed(self, folded: list[str]):
        if self._encoder is None:
            from triage.similarity import Encoder

            self._encoder = Encoder(self.semantic_encoder, max_chars=self.semantic_max_chars)
        return self._encoder.encode([t[: self.semantic_max_chars] for t in folded])

    def _compile(self) -> None:
        try:
            self.lexicon_ = CompiledLexicon(yaml.safe_load(self.lexicon_yaml_))
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
        texts = [t or "" for t in texts]
        folded, rules, plan, parts = self._read(texts, for_level_model=self.level_model_ is not None)
        if self.level_model_ is not None:
            self._apply_level_model(folded, rules, plan, parts)
        return [self._assemble(texts[i], folded[i][1], rules[i], plan.get(i)) for i in range(len(texts))]

    def _read(self, texts: list[str], *, for_level_model: bool):
        """Every part but the level model: folded texts, each text's rule result (levels raised by the classifiers
        in place), the self-harm P(plan named) by text, and what the level model reads (`parts`). With
        `for_level_model`, the semantic head also reads texts already at high, for the level model to weigh."""
        self._check_fitted()
        folded = [fold(t) for t in texts]
        rules = [self._rule_levels(f) if f.strip() else None for f, _ in folded]
        # what the rules alone said, before the classifiers raise anything: the level model reads it
        parts: dict = {"rules": [(dict(r[0]), set(r[2])) if r is not None else None for r in rules]}
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
        type_scores = None  # the n-gram classifier's highest P(type) per text: the semantic head's gate
        parts["ngram"], parts["semantic"] = {}, {}
        if self.type_classifier_ is not None:
            type_scores, parts["ngram"] = self._apply_type_classifier([f for f, _ in folded], rules)
        if getattr(self, "semantic_classifier_", None) is not None:
            parts["semantic"] = self._apply_semantic([f for f, _ in folded], rules, type_scores, for_level_model)
        for i, r in enumerate(rules):
            if r is not None:
                self._lift_self_harm(r, plan.get(i))
        return folded, rules, plan, parts

    def _apply_type_classifier(self, folded: list[str], rules: list) -> tuple[dict[int, float], dict[int, dict]]:
        """Raise types the rules left low when the type classifier is confident (recall for unseen phrasings).

        A short text is read whole; of a long one, the sentences where the lexicon saw something, or, when it saw
        nothing, its first `type_windows` windows of `type_max_chars` (a risk sentence buried in a long complaint).
        A type counts as seen when the rules found a live word of it; where they did not, the classifier is a second
        opinion only: high needs `type_alone_high_threshold` and a text of at least `type_alone_min_chars`.
        Returns each read text's highest probability over the types, and its P per type (of the piece that scored
        that type highest).
        """
        owners: list[int] = []
        inputs: list[str] = []
        for i, text in enumerate(folded):
            if rules[i] is None:
                continue
            if len(text) <= self.type_max_chars:
                pieces = [text]
            elif rules[i][3]:
                pieces = ["。".join(text[a:b] for a, b in rules[i][3])[: self.type_max_chars]]
            else:
                step = self.type_max_chars
                pieces = [text[k : k + step] for k in range(0, min(len(text), step * self.type_windows), step)]
            owners.extend([i] * len(pieces))
            inputs.extend(pieces)
        if not inputs:
            return {}, {}
        probabilities, features = self.type_classifier_.predict_proba(inputs)
        best: dict[tuple[int, int], int] = {}  # (text, type) -> the input row that scored it highest
        for row, i in enumerate(owners):
            for j in range(probabilities.shape[1]):
                if (i, j) not in best or probabilities[row, j] > probabilities[best[i, j], j]:
                    best[i, j] = row
        top: dict[int, float] = {}
        per_type: dict[int, dict[str, float]] = {}
        for (i, j), row in best.items():
            top[i] = max(top.get(i, 0.0), float(probabilities[row, j]))
            per_type.setdefault(i, {})[self.type_classifier_.types_[j]] = float(probabilities[row, j])
        for (i, j), row in best.items():
            name = self.type_classifier_.types_[j]
            levels, evidence, unsuppressed, _, eligible = rules[i]
            p = probabilities[row, j]
            if name not in eligible or (name in levels and name not in unsuppressed):
                continue  # negated, reported or hypothetical words of this type, or no person it needs
            seen = name in levels
            high_at = self.type_high_threshold if seen else self.type_alone_high_threshold
            medium_at = self.type_medium_threshold if seen else self.type_alone_medium_threshold
            target = 3 if p >= high_at else 2 if p >= medium_at else 0
            if not seen and len(folded[i]) < self.type_alone_min_chars:
                target = min(target, 2)
            target = min(target, self.lexicon_.caps[name])
            if target > levels.get(name, 0):
                spans = self.type_classifier_.explain(inputs[row], features[row], j)
                if len(folded[i]) > self.type_max_chars:  # spans index the piece that was read: find them again
                    spans = [(at, at + b - a) for a, b in spans if (at := folded[i].find(inputs[row][a:b])) >= 0]
                levels[name] = target
                evidence.setdefault(name, {})[target] = spans
                unsuppressed.add(name)
        return top, per_type

    def _apply_semantic(
        self, folded: list[str], rules: list, type_scores: dict[int, float] | None, read_high: bool
    ) -> dict[int, dict]:
        """Raise a type to high where the semantic head is confident and nothing else reached high.

        Read: texts whose flags are all below high, that hold `semantic_min_chars` Chinese characters, and where the
        rules saw some risk word or the n-gram classifier gave some type at least `semantic_gate` (USE costs
        ≈ 5–10 ms a text; the gate spares the plainly ordinary ones). A text is read whole; one of at least
        `semantic_sentence_min_chars` also sentence by sentence, since one risk sentence in a long letter hardly
        moves the whole text's vector (a sentence needs the stricter `semantic_sentence_threshold`). Vetoed, as
        for the type classifier: a type whose words the rules saw only negated, reported or hypothetical, and a
        type that needs a person (vulnerable) where none is named. Evidence: the sentence the head scores highest.
        With `read_high`, texts already at high are read too (the level model weighs a high against the head's P;
        few ordinary petitions are at high), but only those below high are raised here. Returns each read text's P
        per type.
        """
        below = {i for i, r in enumerate(rules) if r is not None and max(r[0].values(), default=0) < 3}
        asked = [
            i
            for i, r in enumerate(rules)
            if r is not None
            and (read_high or i in below)
            and _han_count(folded[i]) >= self.semantic_min_chars
            and (r[0] or type_scores is None or type_scores.get(i, 0.0) >= self.semantic_gate)
        ]
        if not asked:
            return {}
        whole = self.semantic_classifier_.predict_proba(self._embed([folded[i] for i in asked]))
        read = {i: dict(zip(self.semantic_classifier_.types_, whole[row].tolist())) for row, i in enumerate(asked)}
        sentences: dict[int, tuple[list, object]] = {}
        if self.semantic_sentence_threshold <= 1:  # above 1 sentences never raise a type: read them for evidence only
            long_texts = [i for i in asked if len(folded[i]) >= self.semantic_sentence_min_chars]
            sentences = self._sentence_scores(folded, long_texts)
        raised: list[tuple[int, str, int]] = []  # (text, type, column)
        for row, i in enumerate(asked):
            if i not in below:
                continue
            levels, evidence, unsuppressed, _, eligible = rules[i]
            for j, name in enumerate(self.semantic_classifier_.types_):
                confident = whole[row, j] >= self.semantic_threshold or (
                    i in sentences and sentences[i][1][:, j].max() >= self.semantic_sentence_threshold
                )
                if not confident or name not in eligible or (name in levels and name not in unsuppressed):
                    continue
                if min(3, self.lexicon_.caps[name]) > levels.get(name, 0):
                    raised.append((i, name, j))
        # Evidence: the best sentence of each raised text (texts read whole only are split now: few pay for it).
        sentences.update(self._sentence_scores(folded, sorted({i for i, _, _ in raised} - set(sentences))))
        for i, name, j in raised:
            spans, scores = sentences[i]
            best = spans[int(scores[:, j].argmax())]
            if self.semantic_past_veto and any(
                best[0] <= at < best[1] for at, _ in modifier_spans(self.lexicon_, folded[i], _SEMANTIC_VETO_LABELS)
            ):
                continue  # 上个月还关过人, 之前跳过一次, 虚惊一场: the head cannot read tense; a past incident stays medium
            levels, evidence, unsuppressed = rules[i][:3]
            levels[name] = min(3, self.lexicon_.caps[name])
            unsuppressed.add(name)
            evidence.setdefault(name, {})[3] = [best]
        return read

    def _sentence_scores(self, folded: list[str], indices: list[int]) -> dict[int, tuple[list, object]]:
        """Per text: its sentences (folded spans within the first `semantic_max_chars`) and their P(type) rows."""
        spans = {i: sentence_spans(folded[i][: self.semantic_max_chars]) or [(0, len(folded[i]))] for i in indices}
        pieces = [folded[i][a:b] for i in indices for a, b in spans[i]]
        if not pieces:
            return {}
        scores = self.semantic_classifier_.predict_proba(self._embed(pieces))
        out, offset = {}, 0
        for i in indices:
            out[i] = (spans[i], scores[offset : offset + len(spans[i])])
            offset += len(spans[i])
        return out

    def _lift_self_harm(self, rules, plan_prob: float | None) -> None:
        """The self-harm classifier's step: one level up where it is confident a plan is named, or a live distress
        word to medium."""
        levels, evidence, unsuppressed, _, _ = rules
        if plan_prob is None or "self_harm" not in unsuppressed:
            return
        current = levels["self_harm"]
        if current >= 2 and plan_prob >= self.lift_threshold:
            levels["self_harm"] = min(current + 1, 4)
            evidence["self_harm"][levels["self_harm"]] = evidence["self_harm"][current]
        elif current == 1 and plan_prob >= self.model_only_threshold:
            levels["self_harm"] = 2
            evidence["self_harm"][2] = evidence["self_harm"][1]

    def _level_rows(self, folded: list, rules: list, plan: dict, parts: dict) -> tuple[list, np.ndarray]:
        """The level model's input: one row per (text, type) of every text the semantic head read that holds at least
        `level_min_chars` Chinese characters (the level model is neither trained nor applied on the others)."""
        types = self.lexicon_.types
        caps = self.lexicon_.caps
        nan = float("nan")
        keys: list[tuple[int, str]] = []
        columns: dict[str, list] = {k: [] for k in (
            "final", "rule", "suppressed", "eligible", "length", "plan", "other_high", "ngram", "semantic")}
        for i, r in enumerate(rules):
            if r is None or i not in parts["semantic"] or _han_count(folded[i][0]) < self.level_min_chars:
                continue
            levels, eligible = r[0], r[4]
            rule_levels, rule_live = parts["rules"][i]
            final = [min(levels.get(t, 0), caps[t]) for t in types]
            highs = sum(level >= 3 for level in final)
            ngram, semantic = parts["ngram"].get(i, {}), parts["semantic"].get(i, {})
            for t, level in zip(types, final):
                keys.append((i, t))
                columns["final"].append(level)
                columns["rule"].append(min(rule_levels.get(t, 0), caps[t]))
                columns["suppressed"].append(t in rule_levels and t not in rule_live)
                columns["eligible"].append(t in eligible)
                columns["length"].append(len(folded[i][0]))
                columns["plan"].append(plan.get(i, nan))
                columns["other_high"].append(highs - (level >= 3) > 0)
                columns["ngram"].append(ngram.get(t, nan))
                columns["semantic"].append(semantic.get(t, nan))
        if not keys:
            return [], np.zeros((0, 0))
        return keys, RiskLevelModel.feature_matrix(types, [t for _, t in keys], **columns)

    def _apply_level_model(self, folded: list, rules: list, plan: dict, parts: dict) -> None:
        """Set each type's alert by the level model: at high where P(high or above) ≥ `level_threshold`, at medium
        where the other parts said high and it is below.

        It reads only texts the semantic head read: on a few characters (我要自杀, 着火了) the n-grams' opinion means
        little, and there the other parts decide alone, as without a level model. A critical stays; a high the rules
        reached through a pinyin or homophone spelling (自sha, zisha) stays, since the classifiers read it as written.
        Nothing is raised where the rules saw the type's words only negated, reported or hypothetical, or where the
        person it needs is missing."""
        keys, rows = self._level_rows(folded, rules, plan, parts)
        if not keys:
            return
        probabilities = self.level_model_.predict_proba(rows)
        for (i, name), p in zip(keys, probabilities.tolist()):
            levels, evidence, unsuppressed, _, eligible = rules[i]
            current = min(levels.get(name, 0), self.lexicon_.caps[name])
            if current >= 4:
                continue
            if p >= self.level_threshold and current < 3:
                if name not in eligible or (name in levels and name not in unsuppressed):
                    continue
                target = min(3, self.lexicon_.caps[name])
                if target <= current:
                    continue
                spans = self._best_spans(folded[i][0], evidence.get(name, {}), name)
                if not spans:
                    continue
                levels[name] = target
                evidence.setdefault(name, {})[target] = spans
                unsuppressed.add(name)
            elif p < self.level_threshold and current == 3:
                if self._evasive(folded[i][0], name, evidence.get(name, {}).get(3, [])):
                    continue  # the classifiers read 自sha as written: their doubt says nothing there
                levels[name] = 2
                cited = evidence.setdefault(name, {})
                cited[2] = cited.get(3) or cited.get(2, [])

    def _evasive(self, folded: str, name: str, spans: list[tuple[int, int]]) -> bool:
        """Whether a cited span of type `name` is a homophone or pinyin spelling of a cue (自sha, tiao lou);
        two-character variants the lexicon lists itself (跳搂) are ordinary cues and the classifiers learn them."""
        if self.lexicon_.first_char_re is None or not spans:
            return False
        return any(
            hit.type == name and any(hit.start < end and start < hit.end for start, end in spans)
            for hit in phonetic_hits(self.lexicon_, folded, [])
        )

    def _best_spans(self, folded: str, by_level: dict, name: str) -> list[tuple[int, int]]:
        """Evidence for a type the level model raises: what the other parts cited for it at their highest level,
        else the sentence the semantic head (or, without one, the n-gram classifier) scores highest for it."""
        for level in sorted(by_level, reverse=True):
            if by_level[level]:
                return list(by_level[level])
        if getattr(self, "semantic_classifier_", None) is not None and name in self.semantic_classifier_.types_:
            spans, scores = self._sentence_scores([folded], [0])[0]
            return [spans[int(scores[:, self.semantic_classifier_.types_.index(name)].argmax())]]
        if self.type_classifier_ is not None and name in self.type_classifier_.types_:
            piece = folded[: self.type_max_chars]
            probabilities, features = self.type_classifier_.predict_proba([piece])
            return self.type_classifier_.explain(piece, features[0], self.type_classifier_.types_.index(name))
        return []

    def level_training_rows(self, rows: Sequence[dict]) -> tuple[list, list[int]]:
        """Level-model rows and labels for authored examples (`text, type, level`) the level model reads, scored
        without a level model: a type is positive on a row whose gold type it is at high or critical; hard negatives
        give a negative for every type; a positive's other types are left out (the row may well hold them too)."""
        folded, rules, plan, parts = self._read([r["text"] for r in rows], for_level_model=True)
        keys, features = self._level_rows(folded, rules, plan, parts)
        out_rows, labels = [], []
        for (i, name), row in zip(keys, features.tolist()):
            gold_type, gold_level = rows[i]["type"], rows[i]["level"]
            if gold_level != "none" and gold_type != name:
                continue
            out_rows.append(row)
            labels.append(int(gold_type == name and gold_level in ("high", "critical")))
        return out_rows, labels

    def _assemble(self, text: str, where: list[int], rules, plan_prob: float | None) -> RiskOut:
        if rules is None:
            return RiskOut()
        levels, evidence, _, _, _ = rules
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
        windows = Windows(self.booster_window, self.negation_window, self.hypothetical_window, self.reported_window)
        return rule_levels(self.lexicon_, folded, windows)

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
            state = {
                "params": self.get_params(),
                "classifier": self.classifier_,
                "type_classifier": self.type_classifier_,
                "semantic_classifier": self.semantic_classifier_,
                "level_model": self.level_model_,
            }
            pickle.dump(state, fh)
        manifest = {
            "component": "risk",
            "format": BUNDLE_FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "types": self.types,
            "has_classifier": self.classifier_ is not None,
            "has_type_classifier": self.type_classifier_ is not None,
            "has_level_model": self.level_model_ is not None,
            "semantic_encoder": self._encoder_version() if self.semantic_classifier_ is not None else None,
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
        detector.semantic_classifier_ = state.get("semantic_classifier")
        detector.level_model_ = state.get("level_model")
        return detector

    def _encoder_version(self) -> str:
        from triage.similarity import Encoder

        return Encoder(self.semantic_encoder).version  # the name and package version; loads no weights

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
            "type_windows": self.type_windows,
            "type_alone_min_chars": self.type_alone_min_chars,
            "semantic_encoder": self.semantic_encoder,
            "semantic_threshold": self.semantic_threshold,
            "semantic_min_chars": self.semantic_min_chars,
            "semantic_gate": self.semantic_gate,
            "semantic_sentence_threshold": self.semantic_sentence_threshold,
            "semantic_sentence_min_chars": self.semantic_sentence_min_chars,
            "semantic_past_veto": self.semantic_past_veto,
            "semantic_max_chars": self.semantic_max_chars,
            "semantic_c": self.semantic_c,
            "level_threshold": self.level_threshold,
            "level_min_chars": self.level_min_chars,
        }


def _han_count(text: str) -> int:
    return sum("\u4e00" <= c <= "\u9fff" for c in text)


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


def train_detector(
    data_dir: str | Path | None = None,
    corpora_dir: str | Path | None = None,
    *,
    semantic: bool = True,
    level_folds: int = 5,
    progress: bool = False,
    **params,
) -> RiskDetector:
    """Build the production detector: lexicon from `corpora_dir`; classifiers on the shared data plus our petition
    examples (`risk_model.training_rows`: `val`, `val2`, the train_extra hold-out and the blind sets stay unseen for
    bench/risk.py); the semantic head unless `semantic` is False (it encodes ≈ 10k texts, ≈ 1 min).

    With `level_folds` ≥ 2 (and the semantic head), the level model is trained too: the authored rows are cut into
    that many folds by a hash of their text, a detector is fitted without each fold and scores it, and the model
    learns from those out-of-fold outputs. It costs `level_folds` more fits (≈ 40 s each on 2 cores)."""
    import zlib

    from tqdm import tqdm

    from triage.risk_model import training_rows
    from triage.settings import get_settings

    settings = get_settings()
    data_dir = Path(data_dir) if data_dir else settings.data_dir
    corpora_dir = Path(corpora_dir) if corpora_dir else settings.corpora_dir
    params.setdefault("lexicon_path", corpora_dir / "risk" / "lexicon.yaml")
    rows = training_rows(corpora_dir)
    detector = _fit_detector(data_dir, corpora_dir, rows, semantic, params)
    if not (semantic and level_folds >= 2):
        return detector
    fold_of = [zlib.crc32(r["text"].encode("utf-8")) % level_folds for r in rows]
    features: list = []
    labels: list[int] = []
    for k in tqdm(range(level_folds), desc="risk level model", unit="fold", disable=not progress):
        train = [r for r, f in zip(rows, fold_of) if f != k]
        inner = _fit_detector(data_dir, corpora_dir, train, semantic, params, encoder=detector._encoder)
        x, y = inner.level_training_rows([r for r, f in zip(rows, fold_of) if f == k])
        features += x
        labels += y
    detector.level_model_ = RiskLevelModel().fit(features, labels)
    return detector


def _fit_detector(
    data_dir: Path, corpora_dir: Path, rows: list[dict], semantic: bool, params: dict, encoder=None
) -> RiskDetector:
    from triage.risk_model import self_harm_training_set, semantic_training_set, type_training_set

    texts, levels = self_harm_training_set(data_dir, corpora_dir, rows=rows)
    type_texts, type_labels = type_training_set(data_dir, corpora_dir, rows=rows)
    semantic_set = semantic_training_set(data_dir, corpora_dir, rows=rows) if semantic else ((), (), None)
    detector = RiskDetector(**params)
    if encoder is not None:
        detector.attach_encoder(encoder)
    return detector.fit(
        texts,
        levels,
        type_texts=type_texts,
        type_labels=type_labels,
        semantic_texts=semantic_set[0],
        semantic_labels=semantic_set[1],
        semantic_weights=semantic_set[2],
    )


train = train_detector
