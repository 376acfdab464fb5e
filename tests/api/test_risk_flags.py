"""The issue's risk examples and hard negatives, through POST /v1/triage on the running server."""

from __future__ import annotations

import uuid

import pytest

HIGH_OR_ABOVE = {"high", "critical"}

# (text, flag type, the level the issue states for it). The issue's own examples come first: a conditional threat is
# high; a time, a place reached or a method bought (今晚 / 已经站在楼顶 / 买好了木炭) is critical.
POSITIVES = [
    ("再不解决我就从楼上跳下去", "self_harm", "high"),
    ("明天我们几十个人去市政府门口拉横幅", "gathering", "high"),
    ("楼道里一股煤气味已经两天了", "public_safety", "high"),
    ("今晚我就从楼上跳下去", "self_harm", "critical"),
    ("我已经站在楼顶了", "self_harm", "critical"),
    ("买好了木炭，不想活了", "self_harm", "critical"),
    ("再不给钱我就和老板同归于尽", "violence", "high"),
    ("下周一我们去北京上访，已经买好票了", "escalation", "high"),
    # Evasions: traditional characters, spaces between characters, homophones and pinyin.
    ("再不解決我就從樓上跳下去", "self_harm", "high"),
    ("明天我們幾十個人去市政府門口拉橫幅", "gathering", "high"),
    ("樓道裡一股煤氣味已經兩天了", "public_safety", "high"),
    ("我已經站在樓頂了", "self_harm", "critical"),
    ("電梯困人了，裏面有老人和小孩", "public_safety", "high"),
    ("再 不 解 决 我 就 从 楼 上 跳 下 去", "self_harm", "high"),
    ("今 晚 我 就 从 楼 上 跳 下 去", "self_harm", "critical"),
    ("楼 道 里 一 股 煤 气 味 已 经 两 天 了", "public_safety", "high"),
    ("再不解决我就从楼上跳搂", "self_harm", "high"),
    ("再不解决我就跳 搂", "self_harm", "high"),
    ("再不解决我就自sha", "self_harm", "high"),
    ("我想zisha", "self_harm", "high"),
]

HARD_NEGATIVES = [
    "气死我了",
    "累死了",
    "杀毒软件",
    "炸酱面馆",
    "我不会想不开的",
    "新闻里说有人跳楼",
    "气死我了，快递三天还没送到",
    "加班累死了，公司还不给加班费",
    "电脑装了杀毒软件还是中病毒，维修店乱收费",
    "楼下新开的炸酱面馆油烟太大",
    "我不会想不开的，只是希望政府重视一下物业问题",
    "新闻里说有人跳楼，我们小区天台门要锁好",
]

# The router is sure about this one (城乡建设 above the review threshold) and nothing in it is risky.
CONFIDENT = "小区门口的路灯坏了一个多月，晚上很黑，请尽快维修。"


@pytest.mark.parametrize(("content", "kind", "level"), POSITIVES, ids=[p[0][:12] for p in POSITIVES])
def test_risk_examples_get_the_stated_level_with_evidence(client, content, kind, level):
    body = client.post("/v1/triage", json={"content": content}).json()
    assert body["risk"]["level"] == level, body["risk"]
    flags = [f for f in body["risk"]["flags"] if f["type"] == kind]
    assert flags and flags[0]["level"] == level, body["risk"]
    assert flags[0]["evidence"] and all(e["text"] and e["end"] > e["start"] for e in flags[0]["evidence"])
    # Recall first: a serious flag always reaches a person, whatever the router's confidence.
    assert body["needs_review"] is True and body["priority"] == "urgent"
    assert f"risk {level}: {kind}" in body["review_reasons"]


@pytest.mark.parametrize("content", HARD_NEGATIVES, ids=[n[:10] for n in HARD_NEGATIVES])
def test_hard_negatives_are_not_high_risk(client, content):
    body = client.post("/v1/triage", json={"content": content}).json()
    assert body["risk"]["level"] not in HIGH_OR_ABOVE, body["risk"]
    assert all(f["level"] not in HIGH_OR_ABOVE for f in body["risk"]["flags"])
    assert body["priority"] == "normal"
    assert not any(reason.startswith("risk") for reason in body["review_reasons"])


@pytest.mark.parametrize(
    ("threat", "kind"),
    [("再不修我就从楼上跳下去。", "self_harm"), ("明天我们几十个人去市政府门口拉横幅。", "gathering")],
    ids=["self_harm", "gathering"],
)
def test_a_serious_flag_overrides_a_confident_route(client, threat, kind):
    calm = client.post("/v1/triage", json={"id": f"C-{uuid.uuid4().hex[:10]}", "content": CONFIDENT}).json()
    assert calm["needs_review"] is False and calm["priority"] == "normal"  # the premise: routing alone is sure

    pid = f"C-{uuid.uuid4().hex[:10]}"
    risky = client.post("/v1/triage", json={"id": pid, "content": CONFIDENT + threat}).json()
    # The route is as confident as before; only the risk flag sends it to a person, urgently.
    assert risky["category"]["label"] == calm["category"]["label"]
    assert risky["review_reasons"] == [f"risk high: {kind}"]
    assert risky["needs_review"] is True and risky["priority"] == "urgent"

    alerts = [a for a in client.get("/v1/alerts", params={"type": kind, "limit": 1000}).json() if a["petition_id"] == pid]
    assert len(alerts) == 1 and alerts[0]["level"] == "high" and alerts[0]["status"] == "open"
    # The ticket is urgent and is not auto-assigned past the reviewer, though the router was sure.
    ticket = client.post("/v1/tickets", json={"petition_id": pid, "auto_assign": True}).json()
    assert ticket["urgency"] == "urgent" and ticket["state"] == "received" and ticket["department_id"] is None
    plain = client.post("/v1/tickets", json={"petition_id": calm["id"], "auto_assign": True}).json()
    assert plain["urgency"] == "normal" and plain["state"] == "assigned"


def test_evidence_offsets_slice_the_normalised_text(client):
    title, content = "拖欠工资", "再不解决我就从楼上跳下去"
    body = client.post("/v1/triage", json={"title": title, "content": content}).json()
    text = f"{title}\n{content}"
    assert body["risk"]["flags"]
    for flag in body["risk"]["flags"]:
        for evidence in flag["evidence"]:
            assert text[evidence["start"] : evidence["end"]] == evidence["text"]
