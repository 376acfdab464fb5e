"""Repeat filings (重复件) and same-event reports (同事件) on handwritten petitions, with the real encoder."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from triage.duplicates import DuplicateFinder, PetitionFeatures, same_petitioner
from triage.errors import InvalidInput
from triage.places import extract_place
from triage.schemas import DuplicateOut
from triage.similarity import Encoder

NOW = datetime(2026, 11, 25, 9, 30)

# A small background corpus for the lexical IDF: ordinary petitions on many topics.
BACKGROUND = [
    "西地省A市A3区枫林路小区门口路灯坏了一个月，晚上很黑，请尽快维修。",
    "A市A5区劳动路公交站台破损，下雨天没处躲雨，希望尽快修好。",
    "A市A1区某小区物业乱收停车费，业主多次反映无人处理。",
    "A7县星沙镇农贸市场周边占道经营严重，交通拥堵，请城管部门整治。",
    "A市A2区某工地夜间施工噪音扰民，影响居民休息，请环保部门查处。",
    "A市A6区学校周边没有红绿灯，孩子过马路很危险，建议增设信号灯。",
    "A市A4区小区电梯经常故障，困人多次，请质监部门督促物业维修。",
    "A市A3区菜市场附近垃圾无人清运，臭气熏天，请环卫部门处理。",
    "咨询A市新生儿医保办理流程和需要准备的材料。",
    "A市A5区老旧小区改造后路面积水严重，请住建部门处理。",
] * 3

PIPE_TEXTS = {
    "first": "西地省A市A3区枫林路18号门口自来水管爆裂，水流满街，路面结冰，请自来水公司马上抢修。",
    "second": "A市A3区枫林路18号那里的水管爆了，水一直往外冒，马路上全是水，赶紧派人来修。",
    "third": "A3区枫林路18号附近自来水管破裂喷水，街面被淹，出行困难，请尽快抢修。",
    "other_district": "A市A6区银杉路66号门口自来水管爆裂，水流满街，请自来水公司马上抢修。",
}


@pytest.fixture(scope="module")
def encoder():
    return Encoder("use")


@pytest.fixture(scope="module")
def finder():
    return DuplicateFinder().fit(BACKGROUND)


@pytest.fixture(scope="module")
def make(encoder):
    def build(pid, text, *, petitioner=None, phone=None, hours_ago=0.0, category=None):
        return PetitionFeatures(
            id=pid, text=text, vector=encoder.encode([text])[0], petitioner_id=petitioner, phone=phone,
            place=extract_place(text), received_at=NOW - timedelta(hours=hours_ago), category=category,
        )

    return build


def test_same_person_filing_the_same_matter_again_is_a_repeat_not_a_same_event(finder, make):
    earlier = make("P-1", "A市A3区枫林路小区门口三盏路灯坏了一个多月，晚上很黑，老人孩子出门不安全，请尽快维修。",
                   petitioner="U1001", hours_ago=24 * 6)
    again = make("P-2", "我上周反映过，A3区枫林路小区门口的路灯还是不亮，一个多月了，请赶紧修。", petitioner="U1001")
    result = finder.find(again, [earlier])
    assert [(d.id, d.kind) for d in result] == [("P-1", "repeat")]
    assert isinstance(result[0], DuplicateOut) and 0 < result[0].score <= 1
    assert result[0].received_at == earlier.received_at


def test_same_phone_with_other_formatting_counts_as_the_same_petitioner(finder, make):
    earlier = make("P-1", PIPE_TEXTS["first"], phone="138-0013-8000", hours_ago=30)
    again = make("P-2", PIPE_TEXTS["second"], phone="+86 13800138000")
    assert same_petitioner(again, earlier)
    assert [d.kind for d in finder.find(again, [earlier])] == ["repeat"]


def test_three_people_reporting_the_same_burst_pipe_are_one_event(finder, make):
    reports = [
        make("P-1", PIPE_TEXTS["first"], petitioner="U1", hours_ago=3),
        make("P-2", PIPE_TEXTS["second"], petitioner="U2", hours_ago=2),
    ]
    new = make("P-3", PIPE_TEXTS["third"], petitioner="U3")
    result = finder.find(new, reports)
    assert {d.id for d in result} == {"P-1", "P-2"}
    assert all(d.kind == "same_event" for d in result)
    assert result[0].score >= result[1].score


def test_the_same_problem_in_another_district_is_not_listed(finder, make):
    elsewhere = make("P-9", PIPE_TEXTS["other_district"], petitioner="U9", hours_ago=1)
    new = make("P-3", PIPE_TEXTS["third"], petitioner="U3")
    assert finder.find(new, [elsewhere]) == []


def test_same_person_with_an_unrelated_matter_is_not_a_repeat(finder, make):
    earlier = make("P-1", "咨询A市新生儿医保办理需要哪些材料，在哪里办理。", petitioner="U1001", hours_ago=48)
    new = make("P-2", PIPE_TEXTS["first"], petitioner="U1001")
    assert finder.find(new, [earlier]) == []


def test_nothing_close_gives_an_empty_list(finder, make):
    candidates = [
        make(f"B-{i}", text, petitioner=f"U{i}", hours_ago=i + 1)
        for i, text in enumerate(BACKGROUND[:10])
        if "路灯" not in text
    ]
    new = make("P-3", PIPE_TEXTS["third"], petitioner="U3")
    assert finder.find(new, candidates) == []


def test_reports_outside_the_same_event_window_are_not_listed(make):
    finder = DuplicateFinder(same_event_window_hours=24).fit(BACKGROUND)
    old = make("P-1", PIPE_TEXTS["first"], petitioner="U1", hours_ago=72)
    new = make("P-3", PIPE_TEXTS["third"], petitioner="U3")
    assert finder.find(new, [old]) == []


def test_at_most_max_results_are_returned_best_first(make):
    finder = DuplicateFinder(max_results=2).fit(BACKGROUND)
    reports = [make(f"P-{i}", PIPE_TEXTS[key], petitioner=f"U{i}", hours_ago=i + 1)
               for i, key in enumerate(["first", "second", "first", "second"])]
    result = finder.find(make("P-new", PIPE_TEXTS["third"], petitioner="U-new"), reports)
    assert len(result) == 2 and result[0].score >= result[1].score


def test_the_petition_itself_and_a_candidate_seen_twice_are_handled(finder, make):
    new = make("P-3", PIPE_TEXTS["third"], petitioner="U3")
    twin = make("P-1", PIPE_TEXTS["first"], petitioner="U1", hours_ago=2)
    result = finder.find(new, [new, twin, twin])
    assert [d.id for d in result] == ["P-1"]


def test_find_batch_answers_each_petition_with_its_own_candidates(finder, make):
    a = make("P-3", PIPE_TEXTS["third"], petitioner="U3")
    b = make("P-4", "咨询A市新生儿医保办理流程。", petitioner="U4")
    results = finder.find_batch([a, b], [[make("P-1", PIPE_TEXTS["first"], petitioner="U1", hours_ago=1)], []])
    assert [len(r) for r in results] == [1, 0]


def test_candidates_without_vectors_are_refused(finder, make):
    new = make("P-3", PIPE_TEXTS["third"])
    bare = PetitionFeatures(id="P-1", text=PIPE_TEXTS["first"])
    with pytest.raises(InvalidInput, match="vector"):
        finder.find(new, [bare])


def test_area_keys_alone_are_enough_to_tell_districts_apart(finder, make):
    new = make("P-3", PIPE_TEXTS["third"], petitioner="U3")
    near = make("P-1", PIPE_TEXTS["first"], petitioner="U1", hours_ago=1)
    near.place, near.area_key = None, "西地省/A市/A6区"
    assert finder.find(new, [near]) == []
    near.area_key = "西地省/A市/A3区"
    assert [d.kind for d in finder.find(new, [near])] == ["same_event"]


def test_an_encoder_without_fitted_weights_needs_explicit_weights(make):
    new = make("P-3", PIPE_TEXTS["third"], petitioner="U3")
    old = make("P-1", PIPE_TEXTS["first"], petitioner="U1", hours_ago=1)
    with pytest.raises(InvalidInput, match="weights"):
        DuplicateFinder(encoder="bert").find(new, [old])
    finder = DuplicateFinder(encoder="bert", weights=(-4.0, 2.0, 10.0, 2.0)).fit(BACKGROUND)
    assert [d.kind for d in finder.find(new, [old])] == ["same_event"]
