"""Learned part of risk detection: a self-harm level classifier (自杀风险等级) and the risk type classifier.

The classifier reads Weibo posts annotated 0–10 (SOS-4K: ≥ 7 means a method, plan or time is named) together
with petition-style examples we wrote, and predicts one of three level bands:

    band 0  levels 0–3   no clear risk or passing distress
    band 1  levels 4–6   ideation without a plan (想死、活着没意思)
    band 2  levels 7–10  a method, plan or time is named, or the act is imminent

It also holds the type classifier (RiskTypeClassifier) and the training sets both are built from. Text goes
through `triage.risk_lexicon.fold` first, the same matching form the lexicon uses.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from triage.errors import DataError, NotFitted
from triage.features import StackedBinaryLR, lr_predict_proba, tfidf_transform
from triage.risk_lexicon import fold  # also re-exported: the shared matching form

BAND_EDGES = (4, 7)  # a level below 4 is band 0, 4–6 band 1, 7 and above band 2
BAND_NAMES = ("0-3", "4-6", "7-10")


def level_band(levels: Sequence[int]) -> np.ndarray:
    """Map 0–10 self-harm levels to bands 0, 1, 2."""
    return np.digitize(np.asarray(levels, dtype=float), BAND_EDGES)


def _folded_text(text: str) -> str:
    return fold(text)[0]


class SelfHarmClassifier:
    """Char 1–3-gram TF-IDF with two balanced logistic-regression heads: level bands, and plan named (≥ 7) or not.

    `plan_probability` averages the binary head with the band head's P(band 2); the pair beat either alone.
    """

    def __init__(self, *, c: float = 4.0, max_chars: int = 600, use_words: bool = False):
        self.c = c
        self.max_chars = max_chars
        self.use_words = use_words

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        return [_folded_text((t or "")[: self.max_chars]) for t in texts]

    def _features(self, prepared: list[str], fit: bool = False):
        mats = [vec.fit_transform(prepared) if fit else tfidf_transform(vec, prepared) for vec in self.vectorizers_]
        return mats[0] if len(mats) == 1 else sparse.hstack(mats).tocsr()

    def fit(self, texts: Sequence[str], levels: Sequence[int]) -> "SelfHarmClassifier":
        if len(texts) != len(levels) or len(texts) < 10:
            raise DataError(f"need at least 10 texts with one level each, got {len(texts)} texts and {len(levels)} levels")
        bands = level_band(levels)
        if len(set(bands.tolist())) < 2:
            raise DataError("the self-harm training data needs more than one level band")
        self.vectorizers_ = [TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)]
        if self.use_words:
            self.vectorizers_.append(
                TfidfVectorizer(
                    tokenizer=_jieba_words, token_pattern=None, lowercase=False, ngram_range=(1, 2), sublinear_tf=True, min_df=2
                )
            )
        features = self._features(self._prepare(texts), fit=True)
        for vectorizer in self.vectorizers_:
            vectorizer.stop_words_ = None  # the n-grams min_df dropped: only bulk in a saved bundle
        self.band_model_ = LogisticRegression(C=self.c, class_weight="balanced", max_iter=3000).fit(features, bands)
        self.plan_model_ = None
        if (bands == 2).any() and (bands < 2).any():
            self.plan_model_ = LogisticRegression(C=self.c, class_weight="balanced", max_iter=3000).fit(features, bands == 2)
        self.classes_ = self.band_model_.classes_
        return self

    def _check(self) -> None:
        if not hasattr(self, "band_model_"):
            raise NotFitted("SelfHarmClassifier is not fitted")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of P(band 0), P(band 1), P(band 2); a band missing from training gets probability 0."""
        self._check()
        return self._both(texts)[0]

    def plan_probability(self, texts: Sequence[str], *, folded: bool = False) -> np.ndarray:
        """P(a method, plan or time is named: level ≥ 7) per text; `folded` when the texts went through `fold`."""
        self._check()
        return self._both(texts, folded=folded)[1]

    def _both(self, texts: Sequence[str], *, folded: bool = False) -> tuple[np.ndarray, np.ndarray]:
        bands = np.zeros((len(texts), len(BAND_NAMES)))
        if not len(texts):
            return bands, np.zeros(0)
        prepared = [t[: self.max_chars] for t in texts] if folded else self._prepare(texts)
        features = self._features(prepared)
        bands[:, self.classes_] = lr_predict_proba(self.band_model_, features)
        plan = bands[:, 2]
        if self.plan_model_ is not None:
            plan = (plan + lr_predict_proba(self.plan_model_, features)[:, 1]) / 2
        return bands, plan


_WORD_SPLIT = re.compile(r"\s+")


def _is_word_char(c: str) -> bool:
    return c.isalnum()


def _jieba_words(text: str) -> list[str]:
    import jieba

    jieba.setLogLevel(60)
    return [w for w in jieba.lcut(text) if not _WORD_SPLIT.fullmatch(w)]


# ------------------------------------------------------------------------------------------------ training data

PETITION_LEVEL_TO_SCALE = {"none": 0, "low": 2, "medium": 4, "high": 6, "critical": 9}
"""Where our petition examples sit on the 0–10 Weibo scale: critical names a method/time/place (≥ 7), high is
explicit intent without a plan (band 4–6), medium is ideation, low is distress."""


def load_examples(corpora_dir, split: str | None = None) -> list[dict[str, str]]:
    """Our authored examples (corpora/risk/examples.csv): rows of text, type, level, split."""
    import csv
    from pathlib import Path

    path = Path(corpora_dir) / "risk" / "examples.csv"
    if not path.is_file():
        raise DataError(f"{path} is missing: the risk examples are part of the project's corpora")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"text", "type", "level", "split"} - set(rows[0] if rows else {})
    if missing:
        raise DataError(f"{path} lacks the columns {sorted(missing)}")
    return [r for r in rows if split is None or r["split"] == split]


def weibo_split(data_dir, *, test_size: float = 0.2, seed: int = 0) -> tuple[list[str], list[int], list[str], list[int]]:
    """The shared self-harm posts split once, stratified by level: (train texts, levels, held-out texts, levels)."""
    import csv
    from pathlib import Path

    from sklearn.model_selection import train_test_split

    path = Path(data_dir) / "risk" / "self_harm_train.csv"
    if not path.is_file():
        raise DataError(f"{path} is missing")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = [(r["text"] or "", int(r["level"])) for r in csv.DictReader(fh)]
    texts, levels = [t for t, _ in rows], [lv for _, lv in rows]
    train_x, test_x, train_y, test_y = train_test_split(
        texts, levels, test_size=test_size, random_state=seed, stratify=levels
    )
    return list(train_x), list(train_y), list(test_x), list(test_y)


def ordinary_petitions(data_dir, *, limit: int = 1500, seed: int = 0) -> list[str]:
    """Ordinary petitions from the routing training file, as level-0 examples in petition register."""
    import csv
    import random
    from pathlib import Path

    path = Path(data_dir) / "routing" / "train.csv"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        texts = [f"{r.get('title') or ''}\n{r.get('content') or ''}" for r in csv.DictReader(fh)]
    random.Random(seed).shuffle(texts)
    return texts[:limit]


def type_training_set(data_dir, corpora_dir, *, ordinary: int = 2000, rows=None) -> tuple[list[str], list[str]]:
    """Folded texts and their type label ('none' for negatives) for RiskTypeClassifier: our authored training rows
    (`training_rows`; high and critical count for their type: what the classifier may raise is an alert) plus ordinary petitions
    (`ordinary` of them whole, by title and by one sentence; every other title of the routing train file). `rows`:
    authored rows to use instead of `training_rows` (a fold of them)."""
    texts, labels = [], []
    for row in training_rows(corpora_dir) if rows is None else rows:
        texts.append(fold(row["text"])[0])
        labels.append(row["type"] if row["level"] in ("high", "critical") else "none")
    # Ordinary petitions as negatives, whole and cut short: a title or one sentence is as short as a hotline
    # complaint, and without short negatives the classifier learns that short means risky (嗓子沙哑好几天了).
    for n, text in enumerate(ordinary_petitions(data_dir, limit=10_000, seed=1)):
        title, _, content = text.partition("\n")
        sentences = [s for s in re.split(r"[。！？!?]", content) if len(s) >= 6]
        pieces = [title] if n >= ordinary else [title, text[:600], sentences[len(sentences) // 2] if sentences else ""]
        for piece in pieces:
            if piece.strip():
                texts.append(fold(piece)[0])
                labels.append("none")
    return texts, labels


def self_harm_training_set(data_dir, corpora_dir, *, ordinary: int = 1500, rows=None) -> tuple[list[str], list[int]]:
    """Weibo train split + our authored training rows (`training_rows`, or `rows`) + ordinary petitions at level 0."""
    texts, levels, _, _ = weibo_split(data_dir)
    for row in training_rows(corpora_dir) if rows is None else rows:
        texts.append(row["text"])
        levels.append(PETITION_LEVEL_TO_SCALE[row["level"]] if row["type"] == "self_harm" else 0)
    extra = ordinary_petitions(data_dir, limit=ordinary)
    return texts + extra, levels + [0] * len(extra)


class RiskTypeClassifier:
    """One balanced logistic regression per risk type over char 1–3-gram TF-IDF of folded text.

    Trained on our petition examples (a type's high and critical rows are its positives; its medium and low rows,
    hard negatives, other types and ordinary petitions are negatives). It catches paraphrases the lexicon has no
    word for ("把他家的房子烧了");
    `explain` returns the n-grams that pushed a type up, as spans of the folded text.
    """

    def __init__(self, *, c: float = 4.0, max_chars: int = 600, max_features: int = 60_000):
        self.c = c
        self.max_chars = max_chars
        self.max_features = max_features  # the most frequent n-grams only: keeps the bundle a few MB

    def fit(self, folded_texts: Sequence[str], types: Sequence[str], type_names: Sequence[str]) -> "RiskTypeClassifier":
        labels = np.asarray(types)
        self.types_ = [t for t in type_names if (labels == t).sum() >= 2]
        if not self.types_:
            raise DataError("the type classifier needs at least two positives of some risk type")
        self.vectorizer_ = TfidfVectorizer(
            analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2, max_features=self.max_features
        )
        features = self.vectorizer_.fit_transform([t[: self.max_chars] for t in folded_texts])
        self.vectorizer_.stop_words_ = None  # the n-grams min_df dropped: only bulk in a saved bundle
        self.models_ = [
            LogisticRegression(C=self.c, class_weight="balanced", max_iter=3000).fit(features, labels == t) for t in self.types_
        ]
        return self

    def predict_proba(self, folded_texts: Sequence[str]):
        """(probabilities, features): one column per type in `types_`."""
        if not hasattr(self, "models_"):
            raise NotFitted("RiskTypeClassifier is not fitted")
        features = tfidf_transform(self.vectorizer_, [t[: self.max_chars] for t in folded_texts])
        if not len(folded_texts):
            return np.zeros((0, len(self.types_))), features
        if getattr(self, "_stacked", None) is None:
            self._stacked = StackedBinaryLR(self.models_)
        return self._stacked.predict_proba(features), features

    def _feature_names(self):
        """The n-gram of each feature column, built on first use and never pickled (it would double the bundle)."""
        if getattr(self, "_names", None) is None:
            self._names = self.vectorizer_.get_feature_names_out()
        return self._names

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_names", "_stacked")}  # both rebuilt on use

    def explain(self, folded: str, row, type_index: int, k: int = 3) -> list[tuple[int, int]]:
        """Spans (folded offsets) of the k n-grams of multi-character length that raised this type most."""
        coef = self.models_[type_index].coef_[0]
        names = self._feature_names()
        pairs = ((coef[j] * v, names[j]) for j, v in zip(row.indices, row.data) if coef[j] > 0)
        weights = sorted(pairs, reverse=True)
        spans = []
        for _, gram in weights:
            if len(gram) < 2 or not all(_is_word_char(c) for c in gram):
                continue
            at = folded.find(gram)
            if at >= 0:
                spans.append((at, at + len(gram)))
            if len(spans) == k:
                break
        return spans


class SemanticRiskClassifier:
    """Risk type from sentence embeddings (USE, 512 floats): a multinomial logistic regression over 'none' and the
    types, on the same labels as RiskTypeClassifier (a type's high and critical rows are its class).

    The char n-gram classifier learns the wording our examples were written in; an embedding places "我要到北京去讨个
    说法" next to "进京上访" without sharing a character, so this head is the second opinion for phrasings neither the
    lexicon nor the n-grams know. It reads embeddings, not texts: the encoder comes from the installed package
    (triage.similarity.Encoder) and is never pickled with the model.
    """

    def __init__(self, *, c: float = 16.0):
        self.c = c

    def fit(
        self, embeddings: np.ndarray, types: Sequence[str], type_names: Sequence[str], sample_weight=None
    ) -> "SemanticRiskClassifier":
        labels = np.asarray(types)
        self.types_ = [t for t in type_names if (labels == t).sum() >= 2]
        if not self.types_ or not (labels == "none").any():
            raise DataError("the semantic head needs 'none' rows and at least two positives of some risk type")
        keep = np.isin(labels, ["none", *self.types_])
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)[keep]
        self.model_ = LogisticRegression(C=self.c, max_iter=5000).fit(embeddings[keep], labels[keep], sample_weight=weights)
        self.columns_ = [list(self.model_.classes_).index(t) for t in self.types_]
        return self

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """P(type) per row, one column per type in `types_` (the rest of each row's mass is 'none')."""
        if not hasattr(self, "model_"):
            raise NotFitted("SemanticRiskClassifier is not fitted")
        if not len(embeddings):
            return np.zeros((0, len(self.types_)))
        return lr_predict_proba(self.model_, embeddings)[:, self.columns_]


_SENTENCE = re.compile(r"[^。！？!?；;\n]+")


def sentence_spans(text: str, *, min_chars: int = 2) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, split on 。！？!?；; and newlines, blank or tiny ones left out."""
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if len(m.group().strip()) >= min_chars]


def semantic_training_set(data_dir, corpora_dir, *, ordinary: int = 3000, ordinary_weight: float = 1 / 3, rows=None):
    """Texts, labels and sample weights for SemanticRiskClassifier: our authored training rows (`training_rows`; a
    type's high and critical rows are that type, everything else 'none'), plus `ordinary` routing
    petitions as 'none', each as its title, its first characters and one sentence from its middle. The ordinary
    pieces weigh `ordinary_weight` each: there are many of them, and the hard negatives must not drown. `rows`:
    authored rows to use instead of `training_rows`."""
    rows = training_rows(corpora_dir) if rows is None else rows
    texts = [r["text"] for r in rows]
    labels = [r["type"] if r["level"] in ("high", "critical") else "none" for r in rows]
    weights = [1.0] * len(rows)
    for text in ordinary_petitions(data_dir, limit=ordinary, seed=1):
        title, _, content = text.partition("\n")
        sentences = [content[a:b] for a, b in sentence_spans(content, min_chars=6)]
        for piece in (title, text, sentences[len(sentences) // 2] if sentences else ""):
            if piece.strip():
                texts.append(piece)
                labels.append("none")
                weights.append(ordinary_weight)
    return texts, labels, weights


TRAINING_FILES = (
    "val_blind.csv", "train_round4_a.csv", "train_round4_b.csv", "train_round5_neg.csv", "train_round5_pos.csv",
    "train_round6_a.csv", "train_round6_b.csv", "train_round7_a.csv", "train_round7_b.csv", "train_round8.csv",
    "train_round9.csv", "train_round10.csv",
)
"""More authored rows that only train (text, type, level; other columns ignored): the former dev set, written by
another engineer without seeing the detector and read for fixes in the third round; two files written for the
fourth round in registers the others had little of (long hotline transcripts and letters; short chat messages);
two for the fifth: hard negatives that hold risk words in harmless contexts (with their risky twins), and
positives in indirect wording (euphemism, logistics, what one sees or smells); two for the sixth: violence,
escalation and vulnerable positives told by circumstance, and self-harm, gathering and public-safety hard
negatives; two for the seventh: plainly stated positives in many wordings, and long ordinary complaints that
mention risk words in passing; one for the eighth: firm intents without a date, and hyperbole with the strongest
risk words; one for the ninth: near-twins on both sides of the line between medium and high; one for the tenth:
threats and violence against the petitioner, and dangerous goods stored where people live."""


def training_rows(corpora_dir) -> list[dict[str, str]]:
    """Every authored row the classifiers train on: examples.csv `train`, the train part of train_extra.csv and the
    files of `TRAINING_FILES` that exist. Never the held-out splits or the blind sets."""
    import csv
    from pathlib import Path

    rows = load_examples(corpora_dir, split="train") + load_extra(corpora_dir, part="train")
    for name in TRAINING_FILES:
        path = Path(corpora_dir) / "risk" / name
        if not path.is_file():
            continue
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for r in csv.DictReader(fh):
                text, level = (r.get("text") or "").strip(), (r.get("level") or "none").strip()
                if text and level in PETITION_LEVEL_TO_SCALE:
                    rows.append({"text": text, "type": (r.get("type") or "").strip(), "level": level, "split": "train"})
    return rows


EXTRA_HOLDOUT_EVERY = 3
"""Every third row of train_extra.csv (by a hash of its text) is held out: bench/risk.py scores it, nothing trains on it."""


def load_extra(corpora_dir, *, part: str = "train") -> list[dict[str, str]]:
    """Rows of corpora/risk/train_extra.csv (written by another engineer than examples.csv), or [] when absent.

    part: "train" (two thirds, for training), "holdout" (the other third, for bench/risk.py only) or "all".
    """
    import csv
    import zlib
    from pathlib import Path

    path = Path(corpora_dir) / "risk" / "train_extra.csv"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if (r.get("text") or "").strip()]
    out = []
    for r in rows:
        row = {"text": r["text"], "type": (r.get("type") or "").strip(), "level": (r.get("level") or "none").strip(), "split": "train"}
        if row["level"] not in PETITION_LEVEL_TO_SCALE:
            continue  # a level we do not know is a typo, not a label
        held = zlib.crc32(r["text"].encode("utf-8")) % EXTRA_HOLDOUT_EVERY == 0
        if part == "all" or (part == "holdout") == held:
            out.append(row)
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


class RiskLevelModel:
    """The alert decision per (text, type), learned over what the other parts found.

    Each part of the detector has its own threshold, set by hand or by a search over a few values: the rules say
    high where a cue meets a booster, the n-gram classifier where P(type) ≥ 0.6, the semantic head where its P ≥ 0.5.
    This model reads them together — the level the pipeline reached and the level the rules alone gave, both
    classifiers' probabilities (missing where a part did not read the text), whether the rules saw that type's words
    only negated or reported, the text's length and the self-harm plan probability — and gives P(the type is at
    high or above). It is trained on out-of-fold outputs (`train_detector`: each authored row scored by a detector
    that did not train on it), so it learns how far each part can be trusted on text it has not seen. With the
    shipped weights, a rule's high that both classifiers put at 0.02 gets P ≈ 0.07 (it falls to medium) and one
    they put at 0.1 gets P ≈ 0.37 (it stays high). It is used only on texts the semantic head reads.

    A logistic regression over standardised features: P for a handful of pairs is a dot product (microseconds),
    and its weights can be read.
    """

    LEVELS = 5

    def __init__(self, *, c: float = 1.0):
        self.c = c

    @staticmethod
    def feature_matrix(types: Sequence[str], names: Sequence[str], **columns) -> np.ndarray:
        """One row per (text, type) pair; `names` the type of each pair and one array-like per keyword: `final` the
        pipeline's level for that type, `rule` the rules' alone, `suppressed` (its words seen only negated or
        reported), `eligible` (the person it needs is named), `length` (characters), `plan` the self-harm P(plan
        named), `other_high` (another type is at high), `ngram` / `semantic` P(type) of the two classifiers; NaN in
        `plan`, `ngram` or `semantic` where that part did not read the text."""
        kind = (np.asarray(names, dtype=object)[:, None] == np.asarray(types, dtype=object)[None, :]).astype(float)
        eye = np.eye(RiskLevelModel.LEVELS)
        final = eye[np.asarray(columns["final"], dtype=int)]
        rule = eye[np.asarray(columns["rule"], dtype=int)]
        ngram, semantic, plan = (np.asarray(columns[k], dtype=float) for k in ("ngram", "semantic", "plan"))
        ng_missing, se_missing = np.isnan(ngram), np.isnan(semantic)
        ng = np.where(ng_missing, 0.0, _logit(np.nan_to_num(ngram)))
        se = np.where(se_missing, 0.0, _logit(np.nan_to_num(semantic)))
        is_self_harm = np.asarray([n == "self_harm" for n in names])
        plan_value = np.where(np.isnan(plan) | ~is_self_harm, 0.0, np.nan_to_num(plan))
        scalars = np.column_stack([
            ng, ng_missing, se, se_missing, ng * se / 10,
            np.asarray(columns["suppressed"], dtype=float), np.asarray(columns["eligible"], dtype=float),
            np.log1p(np.asarray(columns["length"], dtype=float)),
            plan_value, np.isnan(plan), np.asarray(columns["other_high"], dtype=float),
        ])
        return np.hstack([final, rule, kind, scalars, ng[:, None] * kind, se[:, None] * kind])

    def fit(self, rows: Sequence[Sequence[float]], labels: Sequence[int]) -> "RiskLevelModel":
        x = np.asarray(rows, dtype=float)
        y = np.asarray(labels, dtype=int)
        if len(set(y.tolist())) < 2:
            raise DataError("the level model needs rows at high or above and rows below")
        self.mean_ = x.mean(axis=0)
        self.scale_ = x.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        model = LogisticRegression(C=self.c, max_iter=5000).fit((x - self.mean_) / self.scale_, y)
        self.coef_ = model.coef_[0]
        self.intercept_ = float(model.intercept_[0])
        return self

    def predict_proba(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        """P(high or above) per row."""
        if not hasattr(self, "coef_"):
            raise NotFitted("RiskLevelModel is not fitted")
        x = np.asarray(rows, dtype=float).reshape(-1, len(self.coef_))
        return expit(((x - self.mean_) / self.scale_) @ self.coef_ + self.intercept_)
