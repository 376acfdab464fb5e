"""The fast inference helpers give exactly what scikit-learn gives, on real-looking petition text."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from triage.features import StackedBinaryLR, lr_predict_proba, tfidf_transform

TEXTS = [
    "小区门口路灯坏了一个月，晚上很黑，请尽快维修",
    "A3区枫林路18号水管爆裂，水流满街",
    "楼上装修噪音太大，周末早上七点就开始砸墙",
    "公交车司机态度恶劣，到站不停车",
    "学校乱收补课费，家长意见很大",
    "医院挂号难，排队三个小时",
    "工地夜间施工扰民，多次投诉无果",
    "拖欠农民工工资半年，老板失联",
    "餐馆油烟直排，居民窗户都是油",
    "路灯不亮，井盖缺失，行人摔伤",
] * 3
LABELS = ["城乡建设", "城乡建设", "环境保护", "交通运输", "教育文体", "卫生计生", "环境保护", "劳动和社会保障", "环境保护", "城乡建设"] * 3
UNSEEN = ["", "   ", "zzzz", "完全没见过的字词组合嗎", "路灯路灯路灯坏了坏了"]


@pytest.mark.parametrize(
    "options",
    [
        dict(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2),
        dict(analyzer="char", ngram_range=(1, 2), sublinear_tf=False, min_df=1, dtype=np.float32, lowercase=False),
        dict(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1, max_features=40),
    ],
)
def test_tfidf_transform_equals_sklearn_transform(options):
    vectorizer = TfidfVectorizer(**options).fit(TEXTS)
    expected = vectorizer.transform(TEXTS + UNSEEN)
    got = tfidf_transform(vectorizer, TEXTS + UNSEEN)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert abs(got - expected).max() < 1e-6
    assert got[len(TEXTS)].nnz == 0  # an empty text is an empty row, not NaN


def test_logistic_regression_probabilities_equal_sklearn():
    X = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)).fit_transform(TEXTS)
    y = np.asarray(LABELS)
    binary = [LogisticRegression(C=4, class_weight="balanced").fit(X, y == label) for label in sorted(set(LABELS))]
    stacked = StackedBinaryLR(binary).predict_proba(X)
    assert np.allclose(stacked, np.column_stack([m.predict_proba(X)[:, 1] for m in binary]), atol=1e-12)
    multinomial = LogisticRegression(C=4).fit(X, y)
    assert np.allclose(lr_predict_proba(multinomial, X), multinomial.predict_proba(X), atol=1e-12)
    assert np.allclose(lr_predict_proba(binary[0], X), binary[0].predict_proba(X), atol=1e-12)
