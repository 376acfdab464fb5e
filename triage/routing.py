"""Category router (分类/分拨): predicts a calibrated distribution over first-level categories (一级分类).

Input texts are `triage.text.compose(title, content)`: the title, a newline, the content. The model is a linear
classifier over character n-gram TF-IDF (optionally plus jieba word n-grams) of the title repeated
`title_repeat` times followed by the first `max_content_chars` characters of the content, plus a down-weighted
block of the title's own n-grams, with its decision values turned into probabilities by a calibrator fitted on
out-of-fold scores. Thin classes (few training texts, e.g. the authored-only categories) are decided by a second,
plainer linear model: when it votes for a thin class, its distribution is the answer. Because both models are
linear, `explain` can say exactly which n-grams of the input pushed the top class up.

`suggest_level2` proposes a second/third-level category (二级/三级分类) from the taxonomy's names by lexical
overlap: the training data has no level2 labels, so treat it as a hint for operators, not a classifier.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
import scipy.sparse as sp
import sklearn
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from triage.errors import BundleError, DataError, NotFitted
from triage.features import tfidf_transform
from triage.schemas import Evidence
from triage.taxonomy import Taxonomy, match_level2, name_idf
from triage.text import split_composed

MODEL_FILE = "router.joblib"
META_FILE = "router.json"
_CALIBRATIONS = ("temperature", "isotonic", "none")
_CLASSIFIERS = ("svm", "logreg")


def jieba_words(text: str) -> list[str]:
    """Word tokenizer for the optional word n-gram features (module level so the model pickles)."""
    import jieba

    jieba.setLogLevel(60)
    return [w for w in jieba.lcut(text) if w.strip()]


class Router:
    """Predicts a calibrated first-level category distribution for composed petition texts.

    Parameters (keyword-only). The defaults are the shipped configuration (char 1–2 TF-IDF, title×3, 600 content
    characters, plus a title-only char 1–3 block at weight 0.5, LinearSVC C=2 balanced, temperature; thin classes
    decided by the plain C=1 model), chosen by grouped 3-fold CV on train.csv plus the authored validation rows;
    bench/results.md ("Routing feature search", "Routing ensembles and title block") has the tables.
    ----------
    title_repeat : times the title is repeated before the content (titles carry most of the signal).
    max_content_chars : content characters kept after the title.
    char_ngram_range : character n-gram sizes.
    min_df : drop n-grams seen in fewer training texts (also keeps the model small).
    sublinear_tf : use 1 + log(tf).
    word_ngram_range : jieba word n-gram sizes, or None for characters only (jieba costs ~10–30 ms a petition).
    classifier : "svm" (LinearSVC) or "logreg".
    C : inverse regularisation strength.
    class_weight : None or "balanced".
    title_weight : weight of a separate block of the title's own char n-grams appended to the features (the title
        repeated inside the text already counts; this block adds title-specific n-grams); 0 turns it off.
    title_ngram_range : character n-gram sizes of that block.
    thin_model_C : C of a plain model (no title block) that decides thin classes: when its top class has fewer than
        `thin_class_max` training texts, its distribution replaces the main model's (the title block and the larger
        C cost the 80-text authored classes 2–3 points of accuracy); None turns this off.
    thin_class_max : classes with fewer training texts than this are thin.
    nb_scaling : scale features per class by their naive-Bayes log-count ratio (NB-SVM) before the linear model.
    nb_alpha : smoothing of those counts.
    nb_min_count : classes with fewer training texts keep plain features (their ratios are too noisy: NB
        scaling cost the 80-example authored classes 17 points of accuracy).
    calibration : "temperature" (one softmax temperature), "isotonic" (temperature, then an isotonic map of the top
        probability to its observed accuracy) or "none" (softmax of raw scores); fitted on
        `calibration_folds`-fold out-of-fold scores of the training texts.
    min_cjk_chars : texts with fewer Chinese characters than this get probabilities shrunk towards uniform in
        proportion (little text is little evidence); 0 turns this off.
    level2_min_score : `suggest_level2` returns no level2 below this name-match score (on authored rows with
        level2 labels the suggestion is right 88% of the time at ≥ 0.3 and 53% over all rows).
    taxonomy : category tree used by `suggest_level2`; saved with the model.
    """

    def __init__(
        self,
        *,
        title_repeat: int = 3,
        max_content_chars: int = 600,
        char_ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        sublinear_tf: bool = True,
        word_ngram_range: tuple[int, int] | None = None,
        classifier: str = "svm",
        C: float = 2.0,
        class_weight: str | None = "balanced",
        title_weight: float = 0.5,
        title_ngram_range: tuple[int, int] = (1, 3),
        thin_model_C: float | None = 1.0,
        thin_class_max: int = 200,
        nb_scaling: bool = False,
        nb_alpha: float = 0.5,
        nb_min_count: int = 200,
        calibration: str = "temperature",
        calibration_folds: int = 3,
        min_cjk_chars: int = 8,
        level2_min_score: float = 0.3,
        taxonomy: Taxonomy | None = None,
        random_state: int = 0,
    ):
        self.title_repeat = title_repeat
        self.max_content_chars = max_content_chars
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.word_ngram_range = word_ngram_range
        self.classifier = classifier
        self.C = C
        self.class_weight = class_weight
        self.title_weight = title_weight
        self.title_ngram_range = title_ngram_range
        self.thin_model_C = thin_model_C
        self.thin_class_max = thin_class_max
        self.nb_scaling = nb_scaling
        self.nb_alpha = nb_alpha
        self.nb_min_count = nb_min_count
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.min_cjk_chars = min_cjk_chars
        self.level2_min_score = level2_min_score
        self.taxonomy = taxonomy
        self.random_state = random_state

    def __setstate__(self, state: dict) -> None:
        # a router pickled before a hyper-parameter existed gets that parameter's current default, so bundles
        # built during development keep loading (retrain for the exact shipped behaviour)
        import inspect

        defaults = {
            name: p.default for name, p in inspect.signature(Router.__init__).parameters.items() if p.default is not p.empty
        }
        self.__dict__.update({k: v for k, v in defaults.items() if k not in state})
        self.__dict__.update(state)

    # ----------------------------------------------------------------------------------------------- features
    def _prepare(self, texts: Sequence[str]) -> list[str]:
        out = []
        for text in texts:
            title, content = split_composed(text)
            out.append((title + " ") * self.title_repeat + content[: self.max_content_chars])
        return out

    def _vectorizers(self) -> list[TfidfVectorizer]:
        common = dict(sublinear_tf=self.sublinear_tf, min_df=self.min_df, lowercase=False, dtype=np.float32)
        vecs = [TfidfVectorizer(analyzer="char", ngram_range=tuple(self.char_ngram_range), **common)]
        if self.word_ngram_range:
            vecs.append(
                TfidfVectorizer(tokenizer=jieba_words, token_pattern=None, ngram_range=tuple(self.word_ngram_range), **common)
            )
        return vecs

    def _features(self, prepared: list[str]) -> sp.csr_matrix:
        mats = [tfidf_transform(vec, prepared) for vec in self.vectorizers_]
        return mats[0] if len(mats) == 1 else sp.hstack(mats, format="csr")

    def _title_vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer="char", ngram_range=tuple(self.title_ngram_range), sublinear_tf=self.sublinear_tf, min_df=self.min_df,
            lowercase=False, dtype=np.float32,
        )

    def _both_features(self, texts: list[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(plain features, plain + weighted title block): the thin-class model reads the first, the main one the second."""
        plain = self._features(self._prepare(texts))
        title_vec = getattr(self, "title_vectorizer_", None)
        if title_vec is None:
            return plain, plain
        titles = tfidf_transform(title_vec, [split_composed(t)[0] for t in texts])
        titles.data *= np.float32(self.title_weight)
        return plain, sp.hstack([plain, titles], format="csr")

    def _linear_model(self, C: float | None = None):
        C = self.C if C is None else C
        if self.classifier == "svm":
            return LinearSVC(C=C, class_weight=self.class_weight, random_state=self.random_state)
        return LogisticRegression(C=C, class_weight=self.class_weight, max_iter=3000)

    def _fit_linear(self, X: sp.csr_matrix, y: np.ndarray, C: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(classes, coef, intercept) of one linear model per class.

        With `nb_scaling` (NB-SVM, Wang & Manning 2012) class k's binary model sees the features multiplied by
        their log-count ratio r_k = log(P(feature | k) / P(feature | not k)); folding r_k back into the weights
        keeps the model one plain linear map, so scoring and `explain` are unchanged.
        """
        classes = np.unique(y)
        if not self.nb_scaling:
            model = self._linear_model(C).fit(X, y)
            coef, intercept = np.asarray(model.coef_, np.float32), np.asarray(model.intercept_, np.float32)
            if len(classes) == 2:  # binary linear models keep one row: the positive class
                coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
            return classes, coef, intercept
        present = X.copy()
        present.data[:] = 1
        coefs, intercepts = [], []
        for label in classes:
            positive = y == label
            p = self.nb_alpha + np.asarray(present[positive].sum(axis=0)).ravel()
            q = self.nb_alpha + np.asarray(present[~positive].sum(axis=0)).ravel()
            ratio = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
            if positive.sum() < self.nb_min_count:
                ratio = np.ones_like(ratio)  # too few examples for stable ratios: plain features for this class
            model = self._linear_model(C).fit(X.multiply(ratio).tocsr(), positive)
            coefs.append(ratio * np.asarray(model.coef_, np.float32).ravel())
            intercepts.append(float(np.ravel(model.intercept_)[0]))
        return classes, np.vstack(coefs), np.asarray(intercepts, np.float32)

    def _scores(self, X: sp.csr_matrix) -> np.ndarray:
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def _routed(self, plain: sp.csr_matrix, full: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw scores, temperature-softmax probabilities, thin-model mask) of the model that decides each row."""
        scores = self._scores(full).astype(np.float64)
        proba = softmax(scores * self.temperature_, axis=1)
        thin_coef = getattr(self, "thin_coef_", None)
        use_thin = np.zeros(len(scores), dtype=bool)
        if thin_coef is not None:
            thin_scores = (np.asarray(plain @ thin_coef.T) + self.thin_intercept_).astype(np.float64)
            thin_proba = softmax(thin_scores * self.thin_temperature_, axis=1)
            use_thin = self.thin_classes_mask_[thin_proba.argmax(axis=1)]
            scores = np.where(use_thin[:, None], thin_scores, scores)
            proba = np.where(use_thin[:, None], thin_proba, proba)
        return scores, proba, use_thin

    # -------------------------------------------------------------------------------------------------- fit
    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> "Router":
        """Learn vocabularies, the linear model and the calibrator. Returns self."""
        texts, labels = _validate(texts, labels)
        if self.classifier not in _CLASSIFIERS:
            raise DataError(f"classifier must be one of {_CLASSIFIERS}, got {self.classifier!r}")
        if self.calibration not in _CALIBRATIONS:
            raise DataError(f"calibration must be one of {_CALIBRATIONS}, got {self.calibration!r}")
        started = time.perf_counter()
        y = np.asarray(labels, dtype=object)
        self.classes_ = np.array(sorted(set(labels)), dtype=object)
        prepared = self._prepare(texts)
        self.vectorizers_ = [v.fit(prepared) for v in self._vectorizers()]
        self.title_vectorizer_ = None
        if self.title_weight > 0:
            self.title_vectorizer_ = self._title_vectorizer().fit([split_composed(t)[0] for t in texts])
        for vec in [*self.vectorizers_, self.title_vectorizer_]:
            if vec is not None:
                vec.stop_words_ = None  # the n-grams min_df dropped: only needed for introspection, and large
        plain, full = self._both_features(texts)
        _, self.coef_, self.intercept_ = self._fit_linear(full, y)
        counts = np.array([(y == label).sum() for label in self.classes_])
        self.thin_classes_mask_ = counts < self.thin_class_max
        self.thin_coef_ = self.thin_intercept_ = None
        if self.thin_model_C is not None and self.thin_classes_mask_.any():
            _, self.thin_coef_, self.thin_intercept_ = self._fit_linear(plain, y, self.thin_model_C)
        self._fit_calibration(plain, full, y)
        self.n_features_ = full.shape[1]
        self.n_train_ = len(texts)
        self.fit_seconds_ = time.perf_counter() - started
        self._feature_names = self._last_batch = None
        if self.taxonomy is not None:
            self.level2_idf_ = name_idf(self.taxonomy, texts)
        return self

    def _fit_calibration(self, plain: sp.csr_matrix, full: sp.csr_matrix, y: np.ndarray) -> None:
        self.temperature_, self.thin_temperature_, self.isotonic_ = 1.0, 1.0, None
        folds = min(self.calibration_folds, int(np.unique(y, return_counts=True)[1].min()))
        if self.calibration == "none" or folds < 2:
            return
        truth = np.searchsorted(self.classes_, y)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        splits = list(splitter.split(full, y))

        def out_of_fold(X: sp.csr_matrix, C: float | None) -> np.ndarray:
            oof = np.zeros((len(y), len(self.classes_)), dtype=np.float64)
            for train_idx, held_idx in splits:
                fold_classes, coef, intercept = self._fit_linear(X[train_idx], y[train_idx], C)
                scores = np.asarray(X[held_idx] @ coef.T) + intercept
                # a fold may miss a class; align its columns with classes_
                aligned = np.full((len(held_idx), len(self.classes_)), -1e3)
                aligned[:, np.searchsorted(self.classes_, fold_classes)] = scores
                oof[held_idx] = aligned
            return oof

        def fitted_temperature(oof: np.ndarray) -> float:
            def nll(log_t: float) -> float:
                return -log_softmax(oof * np.exp(log_t), axis=1)[np.arange(len(y)), truth].mean()

            return float(np.exp(minimize_scalar(nll, bounds=(-4, 6), method="bounded").x))

        oof = out_of_fold(full, None)
        self.temperature_ = fitted_temperature(oof)
        proba = softmax(oof * self.temperature_, axis=1)
        if self.thin_coef_ is not None:
            thin_oof = out_of_fold(plain, self.thin_model_C)
            self.thin_temperature_ = fitted_temperature(thin_oof)
            thin_proba = softmax(thin_oof * self.thin_temperature_, axis=1)
            use_thin = self.thin_classes_mask_[thin_proba.argmax(axis=1)]
            proba = np.where(use_thin[:, None], thin_proba, proba)
        if self.calibration == "isotonic":
            top = proba.max(axis=1)
            correct = (proba.argmax(axis=1) == truth).astype(float)
            self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(top, correct)

    # ---------------------------------------------------------------------------------------------- predict
    def _check(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFitted("Router is not fitted: call fit() or Router.load() first")

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Raw linear scores, shape (n_texts, n_classes), of the model that decides each row (main or thin-class)."""
        self._check()
        texts = _as_list(texts)
        return self._routed(*self._features_of(texts))[0]

    def _features_of(self, texts: list[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        # The last batch's features are kept: the pipeline calls predict_proba on a batch, then explain on each of
        # its petitions, and featurising a petition again costs more than the rest of explain.
        last = getattr(self, "_last_batch", None)
        if last is not None:
            rows = [last[0].get(t) for t in texts]
            if None not in rows:
                plain, full = last[1]
                if len(rows) == 1:  # explain asks for one row: slicing it costs half of fancy indexing
                    return plain[rows[0] : rows[0] + 1], full[rows[0] : rows[0] + 1]
                return plain[rows], full[rows]
        both = self._both_features(texts)
        self._last_batch = ({t: i for i, t in enumerate(texts)}, both)
        return both

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, shape (n_texts, n_classes), columns in `classes_` order, rows sum to 1."""
        self._check()
        texts = _as_list(texts)
        proba = self._routed(*self._features_of(texts))[1]
        if self.isotonic_ is not None:
            proba = _rescale_top(proba, self.isotonic_.predict(proba.max(axis=1)))
        if self.min_cjk_chars:
            # little Chinese text, little evidence: pull towards uniform so such input goes to review
            trust = np.minimum(1.0, np.array([_cjk_count(t) for t in texts], dtype=np.float64) / self.min_cjk_chars)
            proba = trust[:, None] * proba + (1 - trust[:, None]) / proba.shape[1]
        return proba

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]

    def explain(self, text: str, k: int = 5) -> list[Evidence]:
        """Up to k spans of `text` that pushed its top class up most, strongest first.

        Each n-gram's contribution (feature value × weight of the top class) is spread over the characters
        where it occurs; runs of characters carrying at least a tenth of the strongest character's share
        become the evidence, so char n-grams read as phrases (施工围墙, not 施 / 工). Every `Evidence.text` is a
        substring of `text`; `weight` is the summed contribution of the span.
        """
        self._check()
        title, content = split_composed(text)
        visible = title + "\n" + content[: self.max_content_chars]
        plain, full = self._features_of([text])
        scores, _, use_thin = self._routed(plain, full)
        top = int(np.argmax(scores[0]))
        X, coef = (plain, self.thin_coef_) if use_thin[0] else (full, self.coef_)
        contributions = X.data * coef[top, X.indices]
        names = self._names()
        per_char = np.zeros(len(visible))
        for position in np.argsort(-contributions)[:40]:
            if contributions[position] <= 0:
                break
            gram = names[X.indices[position]]
            starts, at = [], visible.find(gram)
            while at >= 0 and gram.strip():
                starts.append(at)
                at = visible.find(gram, at + 1)
            for at in starts:
                per_char[at : at + len(gram)] += contributions[position] / (len(gram) * len(starts))
        if not per_char.any():
            return []
        # plain lists: indexing numpy scalars one character at a time cost more than the rest of explain
        keep = [s and _is_word_char(ch) for s, ch in zip((per_char >= 0.1 * per_char.max()).tolist(), visible)]
        spans: dict[str, float] = {}
        at = 0
        while at < len(visible):
            if not keep[at]:
                at += 1
                continue
            end = at
            while end < len(visible) and keep[end]:
                end += 1
            piece = visible[at:end]
            spans[piece] = spans.get(piece, 0.0) + float(per_char[at:end].sum())
            at = end
        chosen: list[Evidence] = []
        for piece, weight in sorted(spans.items(), key=lambda item: -item[1]):
            if len(chosen) < k and not any(piece in e.text for e in chosen):  # 路灯 adds nothing after 小区门口路灯
                chosen.append(Evidence(text=piece, weight=round(weight, 4)))
        return chosen

    def _names(self) -> list[str]:
        if getattr(self, "_feature_names", None) is None:
            names: list[str] = []
            for vec in [*self.vectorizers_, getattr(self, "title_vectorizer_", None)]:
                if vec is None:
                    continue
                vocab = vec.vocabulary_
                block = [""] * len(vocab)
                for gram, index in vocab.items():
                    block[index] = gram.replace(" ", "") if " " in gram and vec.analyzer != "char" else gram
                names.extend(block)
            self._feature_names = names
        return self._feature_names

    # ----------------------------------------------------------------------------------------------- level 2
    def suggest_level2(self, texts: Sequence[str], level1: str | Sequence[str]) -> list[tuple[str, str | None, float]]:
        """Best (level2, level3 or None, score in [0, 1]) under the given level1 for each text.

        Scores the IDF-weighted share of a taxonomy name's character bigrams that occur in the text (names
        only, no level2 labels exist). level3 is given only when its own name is at least half covered.
        Returns ("", None, score) when the best score is below `level2_min_score` or nothing matches.
        """
        self._check()
        if self.taxonomy is None:
            raise NotFitted("suggest_level2 needs a Router built with taxonomy=…")
        texts = _as_list(texts)
        level1s = [level1] * len(texts) if isinstance(level1, str) else list(level1)
        if len(level1s) != len(texts):
            raise DataError(f"{len(texts)} texts but {len(level1s)} level1 categories", field="level1")
        idf = getattr(self, "level2_idf_", {})
        out = []
        for text, l1 in zip(texts, level1s):
            level2, level3, score = match_level2(self.taxonomy, l1, text, idf)
            out.append((level2, level3, score) if score >= self.level2_min_score else ("", None, score))
        return out

    # ---------------------------------------------------------------------------------------------- persist
    def save(self, directory: str | Path) -> Path:
        """Write `router.joblib` and `router.json` (versions, classes, parameters) into `directory`."""
        self._check()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._feature_names = self._last_batch = None  # rebuilt on demand; keeps the file small
        joblib.dump(self, directory / MODEL_FILE, compress=3)
        meta = {
            "sklearn_version": sklearn.__version__,
            "numpy_version": np.__version__,
            "classes": list(self.classes_),
            "params": {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_") and k != "taxonomy"},
            "n_train": self.n_train_,
            "n_features": self.n_features_,
            "temperature": self.temperature_,
        }
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2, default=list), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Router":
        """Read a router written by `save`; warns when it was saved with another scikit-learn version."""
        directory = Path(directory)
        meta_path, model_path = directory / META_FILE, directory / MODEL_FILE
        if not meta_path.exists() or not model_path.exists():
            raise BundleError(f"{directory}: no saved router ({META_FILE} and {MODEL_FILE} expected)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("sklearn_version") != sklearn.__version__:
            warnings.warn(
                f"router in {directory} was saved with scikit-learn {meta.get('sklearn_version')}, "
                f"running {sklearn.__version__}: predictions may differ; retrain to be sure",
                UserWarning,
                stacklevel=2,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's own version warning would repeat ours
            router = joblib.load(model_path)
        if not isinstance(router, cls):
            raise BundleError(f"{model_path} holds a {type(router).__name__}, not a Router")
        return router


# --------------------------------------------------------------------------------------------------- helpers
def _is_word_char(ch: str) -> bool:
    return ch.isalnum()


def _cjk_count(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


def _as_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise DataError("expected a sequence of texts, got one string: wrap it in a list", field="texts")
    return list(texts)


def _validate(texts: Sequence[str], labels: Sequence[str]) -> tuple[list[str], list[str]]:
    texts, labels = _as_list(texts), _as_list(labels)
    if len(texts) != len(labels):
        raise DataError(f"{len(texts)} texts but {len(labels)} labels: they must match one to one", field="labels")
    if not texts:
        raise DataError("no training texts", field="texts")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise DataError(f"texts must be strings; row {bad[0]} is {type(texts[bad[0]]).__name__}", field="texts")
    labels = [str(label) for label in labels]
    if len(set(labels)) < 2:
        raise DataError(f"need at least 2 distinct labels to train a router, got {sorted(set(labels))}", field="labels")
    return texts, labels


def _rescale_top(proba: np.ndarray, top_target: np.ndarray) -> np.ndarray:
    """Set each row's top probability to `top_target`, sharing the rest in the old proportions."""
    out = proba.copy()
    rows = np.arange(len(proba))
    top_idx = proba.argmax(axis=1)
    top_old = proba[rows, top_idx]
    # keep the argmax: the top probability never drops below the runner-up
    top_new = np.maximum(top_target, np.sort(proba, axis=1)[:, -2] if proba.shape[1] > 1 else top_target)
    rest_scale = np.where(top_old < 1, (1 - top_new) / np.maximum(1 - top_old, 1e-12), 0.0)
    out *= rest_scale[:, None]
    out[rows, top_idx] = top_new
    return out / out.sum(axis=1, keepdims=True)
