"""Risk alerts end to end: a real server, a real webhook receiver on loopback, a restart while it is down."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import RunningServer, free_port

SELF_HARM = "拖欠工资半年了，再不解决我就从楼上跳下去。"
GATHERING = "明天我们几十个人去市政府门口拉横幅，讨个说法。"
CRITICAL = "工资讨不回来，我已经站在楼顶了。"
ORDINARY = "小区门口的路灯坏了一个多月，晚上很黑，请尽快维修。"


class Receiver:
    """A webhook receiver: records every attempt and every accepted delivery with the Idempotency-Key it carried.

    `fail_first` makes it answer 503 to its first few requests, as a receiver that is briefly unwell would.
    """

    def __init__(self, port: int | None = None, fail_first: int = 0):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.fail_first = fail_first
        self.attempts: list[tuple[str, dict]] = []
        self.deliveries: list[tuple[str, dict]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                record = (self.headers.get("Idempotency-Key"), json.loads(body))
                receiver.attempts.append(record)
                if len(receiver.attempts) <= receiver.fail_first:
                    self.send_response(503)
                else:
                    receiver.deliveries.append(record)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def delivered(self, petition_id: str) -> list[tuple[str, dict]]:
        return [d for d in self.deliveries if d[1]["petition_id"] == petition_id]

    def wait_for(self, count: int, petition_id: str | None = None, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.delivered(petition_id) if petition_id else self.deliveries) >= count:
                return
            time.sleep(0.1)


def alerts_for(client, petition_id: str, **params) -> list[dict]:
    listed = client.get("/v1/alerts", params={"limit": 1000, **params})
    assert listed.status_code == 200, listed.text
    return [a for a in listed.json() if a["petition_id"] == petition_id]


@pytest.fixture(scope="module")
def receivers():
    """Two receivers: a healthy one and one that refuses its first two requests."""
    running = [Receiver().start(), Receiver(fail_first=2).start()]
    yield running
    for receiver in running:
        receiver.stop()


@pytest.fixture(scope="module")
def alert_server(tmp_path_factory, shipped_models, receivers):
    env = {
        "TRIAGE_WEBHOOK_URLS": ",".join(r.url for r in receivers),
        "TRIAGE_WEBHOOK_POLL_S": "0.2",
        "TRIAGE_WEBHOOK_BACKOFF_S": "0.2",
    }
    server = RunningServer(tmp_path_factory.mktemp("alerts"), shipped_models, env=env)
    server.start()
    yield server
    server.stop()


def test_high_risk_alert_is_delivered_exactly_once_to_each_receiver(alert_server, receivers):
    healthy, flaky = receivers
    pid = f"R-{uuid.uuid4().hex[:8]}"
    with alert_server.client() as client:
        result = client.post("/v1/triage", json={"id": pid, "content": SELF_HARM}).json()
        assert result["risk"]["level"] in ("high", "critical")
        assert result["needs_review"] is True and result["priority"] == "urgent"
        client.post("/v1/triage", json={"id": pid, "content": SELF_HARM})  # idempotent resubmission: no new alert
        healthy.wait_for(1, pid)
        flaky.wait_for(1, pid)
        time.sleep(1.0)  # would a second delivery follow?
        alerts = alerts_for(client, pid)
    assert len(alerts) == 1 and "self_harm" in alerts[0]["types"]
    (healthy_key, payload), = healthy.delivered(pid)
    (flaky_key, flaky_payload), = flaky.delivered(pid)
    assert payload["petition_id"] == pid and payload["alert_id"] == alerts[0]["id"] and "self_harm" in payload["types"]
    assert flaky_payload == payload
    # One key per (alert, receiver): distinct between receivers, identical on every retry to the same receiver, so
    # a receiver that keeps the keys it has seen processes the alert once.
    assert healthy_key and flaky_key and healthy_key != flaky_key
    flaky_attempts = [key for key, body in flaky.attempts if body["petition_id"] == pid]
    assert len(flaky_attempts) >= 2 and set(flaky_attempts) == {flaky_key}


def test_ordinary_petition_raises_no_alert(alert_server, receivers):
    pid = f"O-{uuid.uuid4().hex[:8]}"
    with alert_server.client() as client:
        result = client.post("/v1/triage", json={"id": pid, "content": ORDINARY}).json()
        assert result["risk"]["level"] in ("none", "low")
        time.sleep(0.5)
        assert alerts_for(client, pid) == []
    assert all(r.delivered(pid) == [] for r in receivers)


def test_alert_filters_by_level_type_status_and_time(alert_server):
    gathering, critical = f"G-{uuid.uuid4().hex[:8]}", f"C-{uuid.uuid4().hex[:8]}"
    with alert_server.client() as client:
        client.post("/v1/triage", json={"id": gathering, "content": GATHERING})
        client.post("/v1/triage", json={"id": critical, "content": CRITICAL})
        (alert,) = alerts_for(client, gathering)
        assert alert["level"] == "high" and "gathering" in alert["types"] and alert["status"] == "open"
        assert alerts_for(client, critical)[0]["level"] == "critical"

        assert alerts_for(client, gathering, level="high") and not alerts_for(client, gathering, level="critical")
        assert alerts_for(client, critical, level="critical") and not alerts_for(client, critical, level="high")
        assert alerts_for(client, gathering, type="gathering") and not alerts_for(client, gathering, type="self_harm")
        assert alerts_for(client, critical, type="self_harm") and not alerts_for(client, critical, type="gathering")
        assert alerts_for(client, gathering, status="open") and not alerts_for(client, gathering, status="acked")

        created = datetime.fromisoformat(alert["created_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
        second = timedelta(seconds=1)
        around = {"since": (created - second).isoformat(), "until": (created + second).isoformat()}
        assert alerts_for(client, gathering, **around)  # a Beijing-time window finds the UTC-stored alert
        assert not alerts_for(client, gathering, since=(created + second).isoformat())
        assert not alerts_for(client, gathering, until=(created - second).isoformat())
        assert client.get("/v1/alerts", params={"level": "medium"}).status_code == 422


def test_ack_records_who_when_and_note_once(alert_server):
    pid = f"A-{uuid.uuid4().hex[:8]}"
    with alert_server.client() as client:
        client.post("/v1/triage", json={"id": pid, "content": GATHERING})
        (alert,) = alerts_for(client, pid)
        before = datetime.now(timezone.utc)
        acked = client.post(f"/v1/alerts/{alert['id']}/ack", json={"by": "operator-7", "note": "已联系属地街道"})
        after = datetime.now(timezone.utc)
        assert acked.status_code == 200, acked.text
        body = acked.json()
        assert body["status"] == "acked" and body["acked_by"] == "operator-7" and body["ack_note"] == "已联系属地街道"
        assert before - timedelta(seconds=1) <= datetime.fromisoformat(body["acked_at"]) <= after + timedelta(seconds=1)
        # The acknowledgement is stored: the list shows it, under status=acked and no longer under open.
        (listed,) = alerts_for(client, pid, status="acked")
        assert (listed["acked_by"], listed["ack_note"], listed["acked_at"]) == ("operator-7", "已联系属地街道", body["acked_at"])
        assert not alerts_for(client, pid, status="open")
        again = client.post(f"/v1/alerts/{alert['id']}/ack", json={"by": "operator-8"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
        assert alerts_for(client, pid)[0]["acked_by"] == "operator-7"  # the first acknowledgement stands
        assert client.post("/v1/alerts/999999/ack", json={"by": "x"}).status_code == 404
        assert client.post(f"/v1/alerts/{alert['id']}/ack", json={"note": "no one"}).status_code == 422


@pytest.mark.slow
def test_alert_survives_a_restart_while_the_receiver_is_down(tmp_path, shipped_models):
    receiver = Receiver()  # not started: deliveries fail until it comes up
    env = {"TRIAGE_WEBHOOK_URLS": receiver.url, "TRIAGE_WEBHOOK_POLL_S": "0.2", "TRIAGE_WEBHOOK_BACKOFF_S": "0.2"}
    server = RunningServer(tmp_path, shipped_models, env=env).start()
    pid = f"D-{uuid.uuid4().hex[:8]}"
    try:
        with server.client() as client:
            assert client.post("/v1/triage", json={"id": pid, "content": SELF_HARM}).status_code == 200
        time.sleep(1.0)  # a few failed attempts against the closed port
    finally:
        server.stop()
    receiver.start()
    restarted = RunningServer(tmp_path, shipped_models, env=env)
    restarted.port, restarted.url = server.port, server.url
    restarted.start()
    try:
        receiver.wait_for(1)
        time.sleep(1.5)  # would a second delivery follow?
        with restarted.client() as client:
            assert len(alerts_for(client, pid)) == 1
    finally:
        restarted.stop()
        receiver.stop()
    assert len(receiver.deliveries) == 1
    key, payload = receiver.deliveries[0]
    assert payload["petition_id"] == pid and key
