"""Fast inference for fitted scikit-learn text models: TF-IDF rows and logistic-regression probabilities.

scikit-learn's `TfidfVectorizer.transform` and `LogisticRegression.predict_proba` validate their input on every
call, which costs about a millisecond each: more than the arithmetic for one petition. The serving path calls them
per petition and per risk type, so these functions do the same arithmetic directly on the fitted attributes.
Each one equals its scikit-learn counterpart (tests/test_features.py checks it against scikit-learn itself).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import TfidfVectorizer

# Per fitted vectorizer: its analyzer, idf in its dtype, and that dtype. Kept beside the vectorizer, not on it,
# so nothing extra is pickled into a bundle; entries go when their vectorizer does.
_PREPARED: "weakref.WeakKeyDictionary[TfidfVectorizer, tuple]" = weakref.WeakKeyDictionary()


def tfidf_transform(vectorizer: TfidfVectorizer, docs: Sequence[str]) -> sp.csr_matrix:
    """Same matrix as `vectorizer.transform(docs)` for a fitted vectorizer with idf and l2 norm (the defaults)."""
    if vectorizer.norm != "l2" or not vectorizer.use_idf or vectorizer.binary:
        return vectorizer.transform(docs)
    cache = _PREPARED.get(vectorizer)
    if cache is None:
        dtype = np.dtype(vectorizer.dtype)
        cache = _PREPARED[vectorizer] = (vectorizer.build_analyzer(), vectorizer.idf_.astype(dtype), dtype)
    analyze, idf, dtype = cache
    vocabulary = vectorizer.vocabulary_
    indptr, indices, counts = [0], [], []
    for doc in docs:
        row: dict[int, int] = {}
        for gram in analyze(doc):
            column = vocabulary.get(gram)
            if column is not None:
                row[column] = row.get(column, 0) + 1
        indices.extend(row)
        counts.extend(row.values())
        indptr.append(len(indices))
    data = np.asarray(counts, dtype=dtype)
    if vectorizer.sublinear_tf:
        np.log(data, out=data)
        data += 1
    columns = np.asarray(indices, dtype=np.int64)
    data *= idf[columns]
    matrix = sp.csr_matrix((data, columns, np.asarray(indptr, dtype=np.int64)), shape=(len(docs), len(vocabulary)))
    lengths = np.diff(matrix.indptr)
    norms = np.sqrt(np.bincount(np.repeat(np.arange(len(docs)), lengths), weights=data * data, minlength=len(docs)))
    matrix.data /= np.repeat(np.where(norms > 0, norms, 1), lengths).astype(dtype)
    matrix.sort_indices()
    return matrix


class StackedBinaryLR:
    """Several fitted binary LogisticRegression models as one matrix product: P(positive) per model, per row."""

    def __init__(self, models: Sequence) -> None:
        self.coef = np.vstack([np.asarray(m.coef_, dtype=np.float64)[0] for m in models]).T.copy()
        self.intercept = np.asarray([float(np.ravel(m.intercept_)[0]) for m in models])

    def predict_proba(self, X) -> np.ndarray:
        """Shape (n_rows, n_models): what `np.column_stack([m.predict_proba(X)[:, 1] for m in models])` gives."""
        return expit(np.asarray(X @ self.coef) + self.intercept)


def lr_predict_proba(model, X) -> np.ndarray:
    """`model.predict_proba(X)` of a fitted LogisticRegression (binary or multinomial), without input validation."""
    scores = np.asarray(X @ np.asarray(model.coef_, dtype=np.float64).T) + model.intercept_
    if scores.shape[1] == 1:
        positive = expit(scores[:, 0])
        return np.column_stack([1 - positive, positive])
    return softmax(scores, axis=1)
