"""Ticket lifecycle, 督办 escalation with a driven clock, and operator corrections, against a real server."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from triage.sla import SlaPolicy

ROOT = Path(__file__).resolve().parents[2]

# Monday 23 Nov 2026, 09:00 Beijing time: normal tickets must be accepted within one working day.
RECEIVED = "2026-11-23T09:00:00+08:00"


def open_ticket(client, content: str, *, auto_assign: bool = False, received_at: str = RECEIVED) -> dict:
    pid = f"K-{uuid.uuid4().hex[:10]}"
    assert client.post("/v1/triage", json={"id": pid, "content": content, "received_at": received_at}).status_code == 200
    response = client.post("/v1/tickets", json={"petition_id": pid, "auto_assign": auto_assign})
    assert response.status_code == 200, response.text
    return response.json()


def act(client, ticket_id: str, action: str, role: str, **extra) -> dict:
    response = client.post(f"/v1/tickets/{ticket_id}/actions", json={"action": action, "actor": f"{role}-1", "role": role, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_ticket_number_is_date_and_sequence(client):
    ticket = open_ticket(client, "小区门口的路灯坏了一个多月，晚上很黑，请尽快维修。")
    day, sequence = ticket["id"].split("-")
    assert len(day) == 8 and day.isdigit() and len(sequence) == 6 and sequence.isdigit()
    assert ticket["state"] == "received"
    assert ticket["events"][0]["action"] == "create"


def test_full_lifecycle_with_reopen_is_audited(client):
    ticket = open_ticket(client, "楼下餐馆油烟直排，熏得我们家没法开窗，投诉多次没有改善。")
    tid = ticket["id"]
    act(client, tid, "assign", "operator", department_id="ecology")
    act(client, tid, "accept", "department")
    act(client, tid, "start", "department")
    act(client, tid, "reply", "department", note="已责令安装油烟净化设备")
    reopened = act(client, tid, "verify_unsatisfied", "citizen", note="油烟还是很大")
    assert reopened["state"] == "reopened"
    act(client, tid, "start", "department")
    act(client, tid, "reply", "department", note="已复查，设备运行正常")
    act(client, tid, "verify_satisfied", "citizen")
    closed = act(client, tid, "close", "operator")
    assert closed["state"] == "closed"
    transitions = [(e["from"], e["to"]) for e in closed["events"] if e["action"] != "create"]
    assert transitions[0] == ("received", "assigned") and transitions[-1] == ("verified", "closed")
    assert ("replied", "reopened") in transitions
    assert all(e["actor"] and e["role"] and e["at"] for e in closed["events"])
    notes = {(e["action"], e["note"]) for e in closed["events"]}
    assert {("reply", "已责令安装油烟净化设备"), ("verify_unsatisfied", "油烟还是很大")} <= notes
    verdict = next(e for e in closed["events"] if e["action"] == "verify_unsatisfied")
    assert (verdict["actor"], verdict["role"]) == ("citizen-1", "citizen")


def test_illegal_transition_is_409_and_changes_nothing(client):
    ticket = open_ticket(client, "单位拖欠工资三个月，老板联系不上。")
    response = client.post(f"/v1/tickets/{ticket['id']}/actions", json={"action": "accept", "actor": "d", "role": "department"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert client.get(f"/v1/tickets/{ticket['id']}").json()["state"] == "received"


def test_return_needs_a_reason_and_the_ticket_is_rerouted_with_audit_events(client):
    ticket = open_ticket(client, "小区旁边的河道有人倾倒垃圾，发臭。")
    tid = ticket["id"]
    act(client, tid, "assign", "operator", department_id="urban_mgmt")
    no_reason = client.post(f"/v1/tickets/{tid}/actions", json={"action": "return", "actor": "d", "role": "department"})
    assert no_reason.status_code in (409, 422) and no_reason.json()["error"]["field"] in ("note", "action")
    assert client.get(f"/v1/tickets/{tid}").json()["state"] == "assigned"
    returned = act(client, tid, "return", "department", note="河道归水务部门管理")
    assert returned["state"] == "returned" and returned["allowed_actions"]
    rerouted = act(client, tid, "assign", "operator", department_id="water", note="改派水务")
    assert rerouted["state"] == "assigned" and rerouted["department_id"] == "water"
    events = rerouted["events"]
    back = next(e for e in events if e["action"] == "return")
    assert (back["from"], back["to"], back["actor"], back["role"], back["note"]) == (
        "assigned", "returned", "department-1", "department", "河道归水务部门管理")
    again = events[-1]
    assert (again["action"], again["from"], again["to"], again["role"], again["note"]) == (
        "assign", "returned", "assigned", "operator", "改派水务")
    assert again["details"]["department_id"] == "water" and again["at"]


def test_wrong_role_is_409(client):
    ticket = open_ticket(client, "学校周边有人违规摆摊，放学时段堵塞交通。")
    act(client, ticket["id"], "assign", "operator", department_id="urban_mgmt")
    response = client.post(f"/v1/tickets/{ticket['id']}/actions", json={"action": "accept", "actor": "c", "role": "citizen"})
    assert response.status_code == 409


def test_overdue_ticket_escalates_up_the_chain_with_audit_events(client):
    ticket = open_ticket(client, "小区二次供水水箱多年未清洗，水有异味，物业不管。")
    tid = ticket["id"]
    act(client, tid, "assign", "operator", department_id="water")

    def run(now: str) -> dict:
        response = client.post("/v1/scheduler/run", json={"now": now})
        assert response.status_code == 200, response.text
        return client.get(f"/v1/tickets/{tid}").json()

    assert run("2026-11-23T18:00:00+08:00")["overdue"] is False
    after_deadline = run("2026-11-24T10:00:00+08:00")  # accept deadline (1 working day) passed
    assert after_deadline["overdue"] is True and after_deadline["escalation_level"] == 0
    first = run("2026-11-25T10:00:00+08:00")  # one more working day: 街道/乡镇 → 区县
    assert first["escalation_level"] == 1 and first["escalated_to"] == "区县"
    again = run("2026-11-25T10:00:00+08:00")  # the same moment again: nothing new
    assert again["escalation_level"] == 1
    top = run("2026-11-30T10:00:00+08:00")  # two working days later: 区县 → 市
    assert top["escalation_level"] == 2 and top["escalated_to"] == "市"
    escalations = [e for e in top["events"] if e["action"] == "escalate"]
    assert [e["details"]["to_level"] for e in escalations] == ["区县", "市"]
    assert len([e for e in top["events"] if e["action"] == "overdue_accept"]) == 1
    overdue = client.get("/v1/tickets", params={"overdue": "true", "limit": 1000}).json()
    assert tid in {t["id"] for t in overdue}
    assert client.get("/v1/metrics/overdue").json().get("water", 0) >= 1


@pytest.mark.parametrize(
    ("content", "urgency"),
    [("小区门口的路灯坏了一个多月，晚上很黑，请尽快维修。", "normal"), ("拖欠工资半年了，再不解决我就从楼上跳下去。", "urgent")],
    ids=["normal", "urgent"],
)
def test_ticket_deadlines_come_from_corpora_sla_yaml(client, content, urgency):
    ticket = open_ticket(client, content)
    category_path = client.get(f"/v1/petitions/{ticket['petition_id']}").json()["result"]["category"]["path"]
    expected = SlaPolicy.load(ROOT / "corpora" / "sla.yaml").deadlines(urgency, category_path, datetime.fromisoformat(RECEIVED))
    assert ticket["urgency"] == urgency
    assert datetime.fromisoformat(ticket["accept_by"]) == expected.accept_by
    assert datetime.fromisoformat(ticket["reply_by"]) == expected.reply_by
    if urgency == "urgent":  # wall-clock hours, well inside the day (urgent: accept in 2 h or stricter)
        assert expected.accept_by - datetime.fromisoformat(RECEIVED) <= timedelta(hours=2)


def test_naive_scheduler_time_is_refused(client):
    response = client.post("/v1/scheduler/run", json={"now": "2026-11-25T10:00:00"})
    assert response.status_code == 422


def test_operator_correction_is_recorded_next_to_the_model_suggestion_and_reassigns(client):
    ticket = open_ticket(client, "小区门口的路灯坏了一个多月，晚上很黑，请尽快维修。")
    suggestion = client.get(f"/v1/petitions/{ticket['petition_id']}").json()["result"]
    response = client.post(
        f"/v1/tickets/{ticket['id']}/route",
        json={"department_id": "street_office", "category": "城乡建设", "reason": "属街道管理的小区路灯", "actor": "op-3"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["department_id"] == "street_office" and body["state"] == "assigned"
    assert body["feedback"] == {
        "model_department_id": suggestion["routes"][0]["department_id"],
        "model_category": suggestion["category"]["label"],
        "chosen_department_id": "street_office",
        "chosen_category": "城乡建设",
        "overridden": suggestion["routes"][0]["department_id"] != "street_office",
    }
    assign = body["events"][-1]
    assert (assign["action"], assign["actor"], assign["role"], assign["note"]) == ("assign", "op-3", "operator", "属街道管理的小区路灯")
    bad = client.post(f"/v1/tickets/{ticket['id']}/route", json={"department_id": "no_such_dept"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "department_id"
    bad = client.post(f"/v1/tickets/{ticket['id']}/route", json={"department_id": "water", "category": "不存在的类"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "category"


def test_routing_metrics_give_override_rates_per_week_category_department_and_review_share(client):
    since = datetime.now(timezone.utc) - timedelta(milliseconds=1)
    lamp = "小区门口的路灯坏了一个多月，晚上很黑，请尽快维修。"
    kept, changed, untouched = open_ticket(client, lamp), open_ticket(client, lamp), open_ticket(client, lamp)
    risky = client.post("/v1/triage", json={"content": lamp + "再不修我就从楼上跳下去。"}).json()
    assert risky["needs_review"] is True  # reviewed: the risk flag sends it to a person
    suggestion = client.get(f"/v1/petitions/{kept['petition_id']}").json()["result"]
    model_department, model_category = suggestion["routes"][0]["department_id"], suggestion["category"]["label"]
    other = "street_office" if model_department != "street_office" else "urban_mgmt"
    client.post(f"/v1/tickets/{kept['id']}/route", json={"department_id": model_department})  # the model was right
    client.post(f"/v1/tickets/{changed['id']}/route", json={"department_id": other})  # the model was wrong

    metrics = client.get("/v1/metrics/routing", params={"since": since.isoformat()}).json()
    week = "{}-W{:02d}".format(*datetime.now(timezone.utc).isocalendar()[:2])
    rows = {(r["week"], r["by"], r["key"]): r for r in metrics["weeks"]}
    assert set(rows) == {(week, "category", model_category), (week, "department", model_department)}
    for row in rows.values():
        # Three tickets on the model's suggestion, two looked at by an operator, one of them re-routed.
        assert (row["tickets"], row["corrections"], row["overrides"], row["override_rate"]) == (3, 2, 1, 0.3333)
    assert metrics["triaged"] == 4
    assert (metrics["auto_routed_share"], metrics["reviewed_share"]) == (0.75, 0.25)


@pytest.mark.slow
def test_corrections_export_feeds_train_py(server, client, tmp_path):
    for content in ("小区门口的路灯坏了一个多月，请尽快维修。", "公司拖欠工资三个月，老板联系不上，我电话13912345678。"):
        ticket = open_ticket(client, content)
        client.post(f"/v1/tickets/{ticket['id']}/route", json={"department_id": "hrss", "category": "劳动和社会保障"})
    export = tmp_path / "corrections.csv"
    env = {**server.env}
    subprocess.run(
        [sys.executable, "-m", "triage.cli", "feedback", "export", "--since", "2020-01-01", "--output", str(export)],
        check=True, cwd=server.workdir, env=env,
    )
    rows = list(csv.DictReader(io.StringIO(export.read_text(encoding="utf-8"))))
    assert len(rows) >= 2 and {"title", "content", "category", "department"} <= set(rows[0])
    assert all(r["category"] == "劳动和社会保障" and r["department"] == "hrss" for r in rows[-2:])
    assert any("老板联系不上" in r["content"] for r in rows)
    assert all("13912345678" not in r["content"] for r in rows)  # the export carries the masked text only
    later = tmp_path / "later.csv"
    subprocess.run(
        [sys.executable, "-m", "triage.cli", "feedback", "export", "--since", "2999-01-01", "-o", str(later)],
        check=True, cwd=server.workdir, env=env,
    )
    assert list(csv.DictReader(io.StringIO(later.read_text(encoding="utf-8")))) == []
    out = tmp_path / "models" / "from-feedback"
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--data", str(export), "--out", str(out), "--no-risk"],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    (source,) = [d for d in manifest["data_sources"] if d["role"] == "train"]
    assert Path(source["path"]).resolve() == export.resolve() and source["rows"] == len(rows)
    assert source["sha256"] == hashlib.sha256(export.read_bytes()).hexdigest()
