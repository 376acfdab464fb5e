"""The issue's risk examples and hard negatives, through POST /v1/triage on the running server."""

from __future__ import annotations

import pytest

HIGH_OR_ABOVE = {"high", "critical"}

POSITIVES = [
    ("再不解决我就从楼上跳下去", "self_harm"),
    ("明天我们几十个人去市政府门口拉横幅", "gathering"),
    ("楼道里一股煤气味已经两天了", "public_safety"),
    ("我已经站在楼顶了，今晚就跳", "self_harm"),
    ("买好了木炭，不想活了", "self_harm"),
    ("再不给钱我就和老板同归于尽", "violence"),
    ("下周一我们去北京上访，已经买好票了", "escalation"),
    ("電梯困人了，裏面有老人和小孩", "public_safety"),
    ("再不解决我就从楼上跳搂", "self_harm"),
    ("再不解决我就自sha", "self_harm"),
    ("再 不 解 决 我 就 从 楼 上 跳 下 去", "self_harm"),
]

HARD_NEGATIVES = [
    "气死我了，快递三天还没送到",
    "加班累死了，公司还不给加班费",
    "电脑装了杀毒软件还是中病毒，维修店乱收费",
    "楼下新开的炸酱面馆油烟太大",
    "我不会想不开的，只是希望政府重视一下物业问题",
    "新闻里说有人跳楼，我们小区天台门要锁好",
]


@pytest.mark.parametrize(("content", "kind"), POSITIVES, ids=[p[0][:12] for p in POSITIVES])
def test_risk_examples_are_flagged_with_evidence(client, content, kind):
    body = client.post("/v1/triage", json={"content": content}).json()
    assert body["risk"]["level"] in HIGH_OR_ABOVE, body["risk"]
    flags = [f for f in body["risk"]["flags"] if f["type"] == kind]
    assert flags and flags[0]["level"] in HIGH_OR_ABOVE
    assert flags[0]["evidence"] and all(e["text"] and e["end"] > e["start"] for e in flags[0]["evidence"])
    # Recall first: a serious flag always reaches a person, whatever the router's confidence.
    assert body["needs_review"] is True and body["priority"] == "urgent"
    assert any(reason.startswith("risk") for reason in body["review_reasons"])


@pytest.mark.parametrize("content", HARD_NEGATIVES, ids=[n[:10] for n in HARD_NEGATIVES])
def test_hard_negatives_are_not_high_risk(client, content):
    body = client.post("/v1/triage", json={"content": content}).json()
    assert body["risk"]["level"] not in HIGH_OR_ABOVE, body["risk"]
    assert body["priority"] == "normal"


def test_evidence_offsets_slice_the_normalised_text(client):
    title, content = "拖欠工资", "再不解决我就从楼上跳下去"
    body = client.post("/v1/triage", json={"title": title, "content": content}).json()
    text = f"{title}\n{content}"
    for flag in body["risk"]["flags"]:
        for evidence in flag["evidence"]:
            assert text[evidence["start"] : evidence["end"]] == evidence["text"]
