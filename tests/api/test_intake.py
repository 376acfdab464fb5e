"""The scripted intake conversations (tests/conversations/*.yaml) against the real server, plus restart survival."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.conversations.runner import load_conversations, names, run_conversation

CONVERSATIONS = load_conversations()


def http_backend(client):
    response = client.post("/v1/intake/sessions")
    assert response.status_code == 200, response.text
    session_id = response.json()["session_id"]
    seen_ticket = {"value": None}

    def send(text: str) -> dict:
        reply = client.post(f"/v1/intake/sessions/{session_id}/messages", json={"text": text})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        submitted_now = body["ticket"] is not None and seen_ticket["value"] is None
        seen_ticket["value"] = body["ticket"]
        return {
            "reply": body["reply"],
            "status": body["state"],
            "slots": body["slots"],
            "urgent": body["urgent"],
            "submit": submitted_now,
            "ticket_no": body["ticket"],
            "asking": body.get("asking"),
        }

    return send


def test_there_are_at_least_25_conversations():
    assert len(CONVERSATIONS) >= 25


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=names(CONVERSATIONS))
def test_conversation_against_the_server(client, conversation):
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    failures = run_conversation(conversation, http_backend(client), now=now)
    assert not failures, "\n".join(failures)


def test_submitted_chat_creates_a_triaged_petition_and_a_ticket(client):
    send = http_backend(client)
    send("A市A3区枫林路18号小区门口三盏路灯坏了一个多月，晚上很黑")
    send("昨天晚上八点发现的")
    observed = send("13912345678")
    for _ in range(3):
        if observed["status"] == "confirming":
            break
        observed = send("没有了")
    final = send("确认")
    assert final["status"] == "submitted" and final["ticket_no"]
    ticket = client.get(f"/v1/tickets/{final['ticket_no']}").json()
    petition = client.get(f"/v1/petitions/{ticket['petition_id']}").json()
    assert petition["channel"] == "miniprogram"
    assert petition["result"]["category"]["label"]
    assert final["ticket_no"] in final["reply"]


def test_self_harm_in_chat_opens_an_urgent_ticket_and_an_alert_before_the_slots_are_complete(client):
    session_id = client.post("/v1/intake/sessions").json()["session_id"]

    def say(text: str) -> dict:
        response = client.post(f"/v1/intake/sessions/{session_id}/messages", json={"text": text})
        assert response.status_code == 200, response.text
        return response.json()

    alarm = say("工资拖了半年，再不解决我就从楼上跳下去")
    # At once, with only the description known: a caring reply, an urgent ticket and an alert.
    assert alarm["state"] == "collecting" and alarm["urgent"] is True and "12356" in alarm["reply"]
    assert alarm["ticket"] is None and alarm["urgent_ticket"]
    assert not (alarm["slots"]["contact"] or {}).get("phone") and not alarm["slots"]["where"]
    early = client.get(f"/v1/tickets/{alarm['urgent_ticket']}").json()
    assert early["urgency"] == "urgent" and early["state"] == "received" and early["accept_by"]
    assert early["petition_id"] == f"{session_id}-risk"
    alerts = client.get("/v1/alerts", params={"type": "self_harm", "limit": 1000}).json()
    assert [a["level"] for a in alerts if a["petition_id"] == early["petition_id"]] == ["high"]

    # The citizen finishes the report: the same ticket number carries the whole report, still urgent.
    observed = say("在开福区德雅路的工地")
    for text in ("今年6月开始拖欠的", "13712345678", "没有了", "没有了"):
        if observed["state"] == "confirming":
            break
        observed = say(text)
    assert observed["state"] == "confirming", observed
    final = say("确认")
    assert final["state"] == "submitted" and final["ticket"] == alarm["urgent_ticket"]
    assert final["ticket"] in final["reply"]
    ticket = client.get(f"/v1/tickets/{final['ticket']}").json()
    assert ticket["petition_id"] == session_id and ticket["urgency"] == "urgent"
    assert ticket["accept_by"] == early["accept_by"]  # the urgent clock kept running from the alarming message
    supplements = [e for e in ticket["events"] if e["action"] == "supplement"]
    assert len(supplements) == 1 and supplements[0]["details"]["from_petition_id"] == f"{session_id}-risk"
    petition = client.get(f"/v1/petitions/{session_id}").json()
    assert petition["channel"] == "miniprogram" and "开福区" in str(petition["location"]) + petition["content"]
    # Only one alert for the conversation: the alarming message's.
    assert [a for a in alerts if a["petition_id"] == session_id] == []


def test_risk_conversation_files_an_urgent_ticket_and_an_ordinary_one_does_not(client):
    by_name = {c["name"]: c for c in CONVERSATIONS}
    for name, urgency in (("gas_smell_is_danger", "urgent"), ("ordinary_report_is_not_urgent", "normal")):
        send = http_backend(client)
        observed = [send(turn["user"]) for turn in by_name[name]["turns"]]
        ticket = client.get(f"/v1/tickets/{observed[-1]['ticket_no']}").json()
        assert ticket["urgency"] == urgency, (name, ticket)


def test_unknown_session_is_404(client):
    response = client.post("/v1/intake/sessions/nope/messages", json={"text": "你好"})
    assert response.status_code == 404


@pytest.mark.slow
def test_a_session_survives_a_restart(tmp_path, shipped_models):
    from tests.conftest import RunningServer

    server = RunningServer(tmp_path, shipped_models).start()
    try:
        with server.client() as client:
            session_id = client.post("/v1/intake/sessions").json()["session_id"]
            first = client.post(f"/v1/intake/sessions/{session_id}/messages", json={"text": "A3区枫林路的路灯坏了一个多月"}).json()
    finally:
        server.stop()
    restarted = RunningServer(tmp_path, shipped_models).start()
    try:
        with restarted.client() as client:
            state = client.get(f"/v1/intake/sessions/{session_id}").json()
            assert state["slots"] == first["slots"]
            again = client.post(f"/v1/intake/sessions/{session_id}/messages", json={"text": "昨天晚上发现的"})
            assert again.status_code == 200
            assert again.json()["slots"]["what"] == first["slots"]["what"]
    finally:
        restarted.stop()
