"""Online clusterer (triage/clusters.py): who joins what, visibility, stable ids, heat, trend, restarts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from triage.clusters import ClusterItem, OnlineClusterer
from triage.errors import InvalidInput, NotFound

PIPE = [
    "枫林路水管爆裂\n枫林路水管爆裂，路面大量积水，请尽快抢修",
    "枫林路自来水管爆了\n枫林路自来水管爆了，水漫到路上，请派人抢修",
    "枫林路水管爆裂积水\n枫林路18号附近水管爆裂积水严重，急需抢修",
]
PIPE_VARIANT = "枫林路水管又爆了\n枫林路水管爆裂了，积水很深，希望尽快抢修"
LAMP = "小区门口路灯坏了\n小区门口路灯坏了一个月，晚上很黑，老人出门不安全"
SMOKE = "烧烤店油烟扰民\n楼下烧烤店油烟太大，每天晚上熏得没法开窗"
TRAFFIC = "学校门口堵车\n学校门口早晚高峰堵车严重，希望相关部门安排交警疏导"
HEATING = "暖气不热\n尊敬的领导您好，反映一下我们小区暖气不热，室温只有十二度，希望相关部门尽快解决"
CORPUS = PIPE + [PIPE_VARIANT, LAMP, SMOKE, TRAFFIC, HEATING]

T0 = datetime(2026, 11, 20, 8, 0)


class CharTfidfEncoder:
    """Deterministic stand-in for triage.similarity.Encoder: L2-normalised char 1–2-gram TF-IDF rows."""

    def __init__(self, corpus):
        self._vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)).fit(corpus)

    def encode(self, texts):
        x = self._vectorizer.transform(texts).toarray().astype(np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


ENCODER = CharTfidfEncoder(CORPUS)


def item(pid, text, *, area="A市/A3区", person=None, hours=0.0, street=None, likes=0, departments=("水务局",)):
    return ClusterItem(pid, ENCODER.encode([text])[0], text, area, street, person, T0 + timedelta(hours=hours),
                       "城乡建设", list(departments), likes)


def make(**overrides):
    params = dict(similarity_threshold=0.25, window_hours=72, heat_half_life_hours=24)
    params.update(overrides)
    return OnlineClusterer(**params)


def test_same_burst_pipe_from_three_people_in_one_district_is_one_visible_cluster():
    clusterer = make()
    first = clusterer.add(item("p1", PIPE[0], person="u1"))
    assert first.created and not first.is_visible
    clusterer.add(item("noise", LAMP, person="u9", hours=0.5))
    second = clusterer.add(item("p2", PIPE[1], person="u2", hours=1))
    third = clusterer.add(item("p3", PIPE[2], person="u3", hours=3))
    assert second.cluster_id == third.cluster_id == first.cluster_id
    assert second.became_visible and not third.became_visible
    visible = clusterer.clusters(T0 + timedelta(hours=4))
    assert [v.id for v in visible] == [first.cluster_id]
    assert visible[0].petitioners == 3 and visible[0].size == 3
    assert visible[0].member_ids == ["p1", "p2", "p3"]
    assert visible[0].area == "A市/A3区" and visible[0].departments == ["水务局"]


def test_same_problem_in_another_district_does_not_join():
    clusterer = make()
    home = clusterer.add(item("p1", PIPE[0], person="u1"))
    clusterer.add(item("p2", PIPE[1], person="u2", hours=1))
    elsewhere = clusterer.add(item("q1", PIPE[0], area="A市/A5区", person="u3", hours=2))
    assert elsewhere.created and elsewhere.cluster_id != home.cluster_id
    assert clusterer.get(home.cluster_id, T0 + timedelta(hours=3)).member_ids == ["p1", "p2"]


def test_one_person_filing_three_times_is_not_a_visible_cluster():
    clusterer = make()
    ids = {clusterer.add(item(f"r{i}", PIPE[i], person="same-phone", hours=i)).cluster_id for i in range(3)}
    assert len(ids) == 1
    now = T0 + timedelta(hours=4)
    assert clusterer.clusters(now) == []
    (chain,) = clusterer.clusters(now, visible_only=False)
    assert chain.size == 3 and chain.petitioners == 1 and not chain.is_visible


def test_petitions_without_petitioner_key_count_as_distinct_people():
    clusterer = make()
    clusterer.add(item("a1", PIPE[0], person=None))
    assert clusterer.add(item("a2", PIPE[1], person=None, hours=1)).is_visible


def test_unknown_area_joins_only_on_very_high_similarity():
    clusterer = make(unknown_area_threshold=0.8)
    home = clusterer.add(item("p1", PIPE[0], person="u1"))
    clusterer.add(item("p2", PIPE[0], person="u4", hours=0.5))
    near = clusterer.add(item("x1", PIPE_VARIANT, area=None, person="u2", hours=1))
    assert near.created  # similar enough within a district, not without one
    same = clusterer.add(item("x2", PIPE[0], area=None, person="u3", hours=2))
    assert same.cluster_id == home.cluster_id and same.similarity >= 0.8


def test_report_outside_the_window_starts_a_new_cluster():
    clusterer = make(window_hours=48)
    first = clusterer.add(item("p1", PIPE[0], person="u1"))
    late = clusterer.add(item("p2", PIPE[1], person="u2", hours=24 * 5))
    assert late.created and late.cluster_id != first.cluster_id


def test_cluster_id_survives_arrivals_and_merge_keeps_older_id_with_alias():
    clusterer = make()
    pipe = clusterer.add(item("p1", PIPE[0], person="u1")).cluster_id
    lamp = clusterer.add(item("l1", LAMP, person="u2", hours=1)).cluster_id
    assert pipe != lamp
    for i, text in enumerate(PIPE[1:], start=2):
        assert clusterer.add(item(f"p{i}", text, person=f"u{i + 10}", hours=i)).cluster_id == pipe
    survivor = clusterer.merge(lamp, pipe)
    assert survivor == pipe
    assert clusterer.resolve(lamp) == pipe and clusterer.resolve(pipe) == pipe
    view = clusterer.get(lamp, T0 + timedelta(hours=5))
    assert view.id == pipe and view.aliases == [lamp] and "l1" in view.member_ids
    with pytest.raises(NotFound):
        clusterer.get("C99999999", T0)


def test_ids_are_deterministic_given_the_input_order():
    def run():
        clusterer = make()
        return [clusterer.add(item(f"i{n}", t, person=f"u{n}", hours=n)).cluster_id for n, t in enumerate(CORPUS)]

    assert run() == run()


def test_state_round_trip_then_adding_matches_never_stopping():
    stream = [item(f"i{n}", t, person=f"u{n % 3}", hours=n * 7, likes=n) for n, t in enumerate(CORPUS * 3)]
    whole, first_half = make(), make()
    for it in stream[:10]:
        whole.add(it)
        first_half.add(it)
    restored = OnlineClusterer.from_state(json.loads(json.dumps(first_half.to_state())))
    for it in stream[10:]:
        assert restored.add(it) == whole.add(it)
    now = T0 + timedelta(hours=24 * 8)
    assert restored.clusters(now, visible_only=False) == whole.clusters(now, visible_only=False)
    assert restored.to_state() == whole.to_state()


def test_fresh_big_cluster_is_hotter_than_stale_small_one():
    clusterer = make(heat_half_life_hours=24, window_hours=48)
    for i, text in enumerate(PIPE[:2]):
        stale = clusterer.add(item(f"s{i}", text, area="A市/A1区", person=f"s{i}", hours=i)).cluster_id
    fresh_texts = PIPE + [PIPE_VARIANT]
    for i, text in enumerate(fresh_texts):
        fresh = clusterer.add(item(f"f{i}", text, area="A市/A2区", person=f"f{i}", hours=24 * 6 + i)).cluster_id
    now = T0 + timedelta(hours=24 * 6 + 5)
    ranked = clusterer.clusters(now)
    assert [v.id for v in ranked] == [fresh, stale]
    assert ranked[0].heat > 3 > 0.1 > ranked[1].heat


def test_repeats_and_likes_raise_heat_less_than_new_people():
    def heat(persons, likes=0):
        clusterer = make()
        for i, person in enumerate(persons):
            cid = clusterer.add(item(f"p{i}", PIPE[i], person=person, likes=likes)).cluster_id
        return clusterer.heat(cid, T0 + timedelta(hours=3))

    assert heat(["a", "b", "c"]) > heat(["a", "b", "b"]) > heat(["a", "b"])
    assert heat(["a", "b"], likes=50) > heat(["a", "b"])


def test_trend_rising_for_a_growing_cluster_and_cooling_for_a_fading_one():
    clusterer = make(window_hours=96, trend_window_hours=24)
    for i, h in enumerate([30, 40, 50, 52, 53]):  # 2 reports 24–48 h ago, 3 in the last day: rising
        rising = clusterer.add(item(f"r{i}", PIPE[i % 3], area="A市/A1区", person=f"r{i}", hours=h)).cluster_id
    for i, h in enumerate([2, 5, 9, 20, 40]):  # 4 reports 24–48 h ago, 1 in the last day: cooling
        cooling = clusterer.add(item(f"c{i}", PIPE[i % 3], area="A市/A2区", person=f"c{i}", hours=h)).cluster_id
    now = T0 + timedelta(hours=54)
    assert clusterer.get(rising, now).trend == "rising"
    assert clusterer.get(cooling, now).trend == "cooling"


def test_keywords_drop_petition_boilerplate_and_title_is_a_member_title():
    clusterer = make()
    for i, text in enumerate(PIPE):
        cid = clusterer.add(item(f"p{i}", text, person=f"u{i}", hours=i)).cluster_id
    clusterer.add(item("h1", HEATING, person="h1", hours=1))
    view = clusterer.get(cid, T0 + timedelta(hours=4))
    assert view.title in {t.split("\n")[0] for t in PIPE}
    assert "水管" in view.keywords or "爆裂" in view.keywords
    heating = clusterer.get(clusterer.cluster_id_of("h1"), T0 + timedelta(hours=4))
    assert not {"反映", "希望", "相关部门", "领导", "您好"} & set(heating.keywords)


def test_recluster_merges_under_oldest_id_and_keeps_other_ids():
    clusterer = make(similarity_threshold=0.95, recluster_threshold=0.25)  # online: every report alone
    ids = [clusterer.add(item(f"p{i}", text, person=f"u{i}", hours=i)).cluster_id for i, text in enumerate(PIPE)]
    lamp = clusterer.add(item("l1", LAMP, person="u9", hours=4)).cluster_id
    assert len(set(ids)) == 3
    report = clusterer.recluster()
    assert report.merged == {ids[1]: ids[0], ids[2]: ids[0]} and report.created == []
    assert clusterer.cluster_id_of("p2") == ids[0] and clusterer.resolve(ids[2]) == ids[0]
    assert clusterer.cluster_id_of("l1") == lamp
    assert clusterer.recluster().merged == {}  # a second pass changes nothing


def test_recluster_split_keeps_id_for_the_larger_part():
    clusterer = make()
    pipe = [clusterer.add(item(f"p{i}", t, person=f"u{i}", hours=i)).cluster_id for i, t in enumerate(PIPE)][0]
    smoke = clusterer.add(item("s1", SMOKE, person="u8", hours=4)).cluster_id
    clusterer.merge(pipe, smoke)  # a wrong manual merge
    report = clusterer.recluster()
    assert clusterer.cluster_id_of("p1") == pipe
    new_id = clusterer.cluster_id_of("s1")
    assert new_id != pipe and new_id not in (smoke,) and report.created == [new_id]
    assert report.moved == {"s1": new_id}


def test_wrong_vector_size_and_repeated_petition_id_are_refused():
    clusterer = make()
    clusterer.add(item("p1", PIPE[0]))
    with pytest.raises(InvalidInput):
        clusterer.add(item("p1", PIPE[1]))
    with pytest.raises(InvalidInput):
        clusterer.add(ClusterItem("p9", np.ones(3, dtype=np.float32), "x", None, None, None, T0))


def test_closed_candidate_is_forgotten_but_visible_cluster_is_kept_until_retention():
    clusterer = make(window_hours=24, retention_hours=24 * 10)
    lone = clusterer.add(item("s1", SMOKE, person="u1")).cluster_id
    pipe = clusterer.add(item("p1", PIPE[0], person="u2")).cluster_id
    clusterer.add(item("p2", PIPE[1], person="u3", hours=1))
    clusterer.add(item("t1", TRAFFIC, person="u4", hours=24 * 3))  # moves time on: both clusters close
    with pytest.raises(NotFound):
        clusterer.get(lone, T0 + timedelta(days=3))
    assert clusterer.get(pipe, T0 + timedelta(days=3)).size == 2
    late = clusterer.add(item("p3", PIPE[2], person="u5", hours=24 * 3 + 1))
    assert late.cluster_id != pipe  # a closed cluster takes no new reports
    clusterer.add(item("t2", TRAFFIC, person="u6", hours=24 * 12))
    with pytest.raises(NotFound):
        clusterer.get(pipe, T0 + timedelta(days=12))


def test_cluster_list_filters_by_area_department_since_and_size():
    clusterer = make()
    for i, text in enumerate(PIPE):
        clusterer.add(item(f"p{i}", text, person=f"u{i}", hours=i))
    for i, text in enumerate([LAMP, LAMP]):
        clusterer.add(item(f"l{i}", text, area="A市/A5区", person=f"v{i}", hours=30 + i, departments=("城管局",)))
    now = T0 + timedelta(hours=40)
    assert [v.area for v in clusterer.clusters(now, area="A市/A5区")] == ["A市/A5区"]
    assert [v.area for v in clusterer.clusters(now, region="A5区")] == ["A市/A5区"]
    assert len(clusterer.clusters(now, region="A市")) == 2 and clusterer.clusters(now, region="5区") == []
    assert [v.departments for v in clusterer.clusters(now, department="水务局")] == [["水务局"]]
    assert [v.size for v in clusterer.clusters(now, since=T0 + timedelta(hours=24))] == [2]
    assert [v.size for v in clusterer.clusters(now, min_size=3)] == [3]


def test_new_likes_raise_heat():
    clusterer = make()
    cid = clusterer.add(item("p1", PIPE[0], person="u1")).cluster_id
    clusterer.add(item("p2", PIPE[1], person="u2", hours=1))
    before = clusterer.heat(cid, T0 + timedelta(hours=2))
    clusterer.update_likes("p1", 30)
    assert clusterer.heat(cid, T0 + timedelta(hours=2)) > before


def test_restart_with_merges_and_reclusters_on_the_way_changes_nothing():
    rng = np.random.default_rng(7)
    texts = [CORPUS[i] for i in rng.integers(0, len(CORPUS), 60)]
    stream = [item(f"i{n}", t, area=f"A市/A{n % 2}区", person=f"u{rng.integers(8)}", hours=n * 3)
              for n, t in enumerate(texts)]

    def run(restart: bool):
        clusterer, log = make(window_hours=48), []
        for n, it in enumerate(stream):
            log.append(clusterer.add(it))
            if n % 10 == 9:
                log.append(clusterer.recluster())
                open_ids = sorted({clusterer.cluster_id_of(x.petition_id) for x in stream[n - 2 : n + 1]})
                if len(open_ids) >= 2:
                    log.append(clusterer.merge(open_ids[0], open_ids[-1]))
            if restart and n % 7 == 0:
                clusterer = OnlineClusterer.from_state(json.loads(json.dumps(clusterer.to_state())))
            for alias, target in clusterer.aliases_.items():
                assert target in clusterer.clusters_ and alias not in clusterer.clusters_
        return log, clusterer

    (log_a, a), (log_b, b) = run(False), run(True)
    assert log_a == log_b
    now = T0 + timedelta(hours=200)
    assert a.clusters(now, visible_only=False) == b.clusters(now, visible_only=False)


def test_heat_follows_the_documented_formula():
    clusterer = make(heat_half_life_hours=24, like_weight=0.5, repeat_weight=0.25)
    cid = clusterer.add(item("p1", PIPE[0], person="u1")).cluster_id
    clusterer.add(item("p2", PIPE[0], person="u2", hours=24, likes=3))
    clusterer.add(item("p3", PIPE[0], person="u2", hours=24))
    expected = 1.0 * 0.5 + 1.0 + 0.25 + 0.5 * np.log1p(3)  # one half-life old, fresh, fresh repeat, likes
    assert clusterer.heat(cid, T0 + timedelta(hours=24)) == pytest.approx(expected)
    assert clusterer.heat(cid, T0 + timedelta(hours=12)) == pytest.approx(2 ** -0.5)  # later reports not yet seen
