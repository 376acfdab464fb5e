"""Duplicates and clusters against a real server with its own database (other tests' petitions stay out)."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer

PIPE = [
    ("U-zhang", "A3区枫林路和桐梓坡路交叉口自来水管爆了", "A市A3区枫林路和桐梓坡路交叉口的自来水管爆了，水流得满马路都是，车都过不去，请赶紧派人来修。", "09:05"),
    ("U-li", "枫林路桐梓坡路口水管爆裂", "A3区枫林路桐梓坡路口早上水管爆裂，马路上全是水，附近小区也停水了，希望尽快抢修。", "09:40"),
    ("U-wang", "A3区枫林路口爆管停水", "A市A3区枫林路与桐梓坡路交叉口自来水管爆了，路面积水很深，我们小区停水一上午了。", "10:30"),
]
OTHER_DISTRICT = ("U-zhao", "A7县星沙大道自来水管爆了", "A7县星沙大道和开元路交叉口自来水管爆了，水流得满马路都是，车过不去，请派人抢修。", "10:45")


def post(client, pid: str, user: str, title: str, content: str, hhmm: str, day: str = "2026-11-24") -> dict:
    response = client.post(
        "/v1/triage",
        json={"id": pid, "title": title, "content": content, "petitioner": {"id": user},
              "received_at": f"{day}T{hhmm}:00+08:00", "channel": "hotline"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, shipped_models):
    server = RunningServer(tmp_path_factory.mktemp("clusters"), shipped_models, env={"TRIAGE_STATE_SAVE_INTERVAL_S": "0"})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pipe_cluster(fresh):
    with fresh.client() as client:
        results = [post(client, f"pipe-{i}", *report) for i, report in enumerate(PIPE)]
        other = post(client, "pipe-other", *OTHER_DISTRICT)
    return results, other


def test_most_petitions_have_no_duplicate(fresh):
    with fresh.client() as client:
        result = post(client, "lone-1", "U-solo", "学校食堂饭菜太贵", "孩子学校食堂一份午餐十八元，分量少，希望教育局核查收费。", "08:00")
    assert result["duplicates"] == [] and result["cluster"] is None


def test_second_filing_by_the_same_person_is_a_repeat(fresh):
    with fresh.client() as client:
        first = post(client, "rep-1", "U-chen", "楼上装修噪音扰民", "A5区望月湖小区12栋楼上装修天天早上七点开始电钻，已经一个月了，严重影响休息。", "08:10", "2026-11-20")
        second = post(client, "rep-2", "U-chen", "楼上装修噪音还没解决", "上周反映过A5区望月湖小区12栋楼上装修噪音，早上七点就开始电钻，到现在还没人管。", "08:30")
    assert first["duplicates"] == []
    kinds = {d["id"]: d["kind"] for d in second["duplicates"]}
    assert kinds.get("rep-1") == "repeat"


def test_three_people_one_burst_pipe_is_one_cluster_and_the_other_district_stays_out(pipe_cluster):
    results, other = pipe_cluster
    assert results[0]["cluster"] is None  # one report is not a cluster
    assert results[1]["duplicates"] and results[1]["duplicates"][0]["kind"] == "same_event"
    cluster = results[2]["cluster"]
    assert cluster is not None and cluster["petitioners"] == 3 and cluster["size"] == 3
    assert results[1]["cluster"]["id"] == cluster["id"]
    assert other["cluster"] is None or other["cluster"]["id"] != cluster["id"]
    assert "pipe-0" not in {d["id"] for d in other["duplicates"]}


def test_cluster_listing_detail_and_duplicates_endpoint(fresh, pipe_cluster):
    cluster_id = pipe_cluster[0][2]["cluster"]["id"]
    with fresh.client() as client:
        listed = client.get("/v1/clusters", params={"as_of": "2026-11-24T12:00:00+08:00"}).json()
        assert cluster_id in [c["id"] for c in listed]
        assert listed == sorted(listed, key=lambda c: -c["heat"])
        assert client.get("/v1/clusters", params={"region": "A7县"}).json() == [] or all(
            "A7县" in (c["area"] or "") for c in client.get("/v1/clusters", params={"region": "A7县"}).json()
        )
        detail = client.get(f"/v1/clusters/{cluster_id}").json()
        assert set(detail["members"]) == {"pipe-0", "pipe-1", "pipe-2"}
        assert detail["title"] and detail["keywords"]
        dups = client.get("/v1/petitions/pipe-0/duplicates").json()
        assert {"pipe-1", "pipe-2"} <= {d["id"] for d in dups}
        assert client.get("/v1/clusters/C-none").status_code == 404


def test_cluster_id_survives_arrivals_a_merge_and_a_restart(fresh, pipe_cluster):
    cluster_id = pipe_cluster[0][2]["cluster"]["id"]
    with fresh.client() as client:
        fourth = post(client, "pipe-3", "U-sun", "枫林路桐梓坡路口爆管还在漏水", "A3区枫林路桐梓坡路口的爆管到中午还在漏水，路面结冰很危险。", "11:30")
        assert fourth["cluster"]["id"] == cluster_id
        # A second, separate cluster in A3区 of another matter, then an operator merges it into the pipe cluster.
        post(client, "dark-1", "U-a", "A3区岳华路路灯全不亮", "A市A3区岳华路整条路的路灯晚上全都不亮，已经三天了，行人很危险。", "11:40")
        dark = post(client, "dark-2", "U-b", "岳华路路灯不亮", "A3区岳华路的路灯连续三天晚上不亮，过马路看不清车。", "11:50")
        dark_id = dark["cluster"]["id"]
        assert dark_id != cluster_id
        merged = client.post("/v1/clusters/merge", json={"ids": [dark_id, cluster_id]}).json()
        assert merged["id"] == cluster_id and dark_id in merged["aliases"]
        assert client.get(f"/v1/clusters/{dark_id}").json()["id"] == cluster_id
    fresh.stop()
    fresh.start()
    with fresh.client() as client:
        detail = client.get(f"/v1/clusters/{cluster_id}").json()
        assert {"pipe-0", "pipe-3", "dark-1"} <= set(detail["members"])
        assert client.get(f"/v1/clusters/{dark_id}").json()["id"] == cluster_id
        fifth = post(client, "pipe-4", "U-zhou", "枫林路桐梓坡路口水管爆了", "A3区枫林路桐梓坡路口水管爆了，到现在还没修好，水漫到人行道上了。", "12:00")
        assert fifth["cluster"]["id"] == cluster_id
