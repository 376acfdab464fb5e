"""Risk alerts end to end: a real server, a real webhook receiver on loopback, a restart while it is down."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import RunningServer, free_port

SELF_HARM = "拖欠工资半年了，再不解决我就从楼上跳下去。"
GATHERING = "明天我们几十个人去市政府门口拉横幅，讨个说法。"
ORDINARY = "小区门口的路灯坏了一个多月，晚上很黑，请尽快维修。"


class Receiver:
    """A webhook receiver: records every delivery and the Idempotency-Key it carried."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.deliveries: list[tuple[str, dict]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.deliveries.append((self.headers.get("Idempotency-Key"), json.loads(body)))
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

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.1)


def alerts_for(client, petition_id: str) -> list[dict]:
    return [a for a in client.get("/v1/alerts", params={"limit": 1000}).json() if a["petition_id"] == petition_id]


@pytest.fixture()
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture()
def alert_server(tmp_path, shipped_models, receiver):
    server = RunningServer(tmp_path, shipped_models, env={"TRIAGE_WEBHOOK_URLS": receiver.url, "TRIAGE_WEBHOOK_POLL_S": "0.2"})
    server.start()
    yield server
    server.stop()


def test_high_risk_petition_raises_one_alert_delivered_once(alert_server, receiver):
    pid = f"R-{uuid.uuid4().hex[:8]}"
    with alert_server.client() as client:
        result = client.post("/v1/triage", json={"id": pid, "content": SELF_HARM}).json()
        assert result["risk"]["level"] in ("high", "critical")
        assert result["needs_review"] is True and result["priority"] == "urgent"
        client.post("/v1/triage", json={"id": pid, "content": SELF_HARM})  # idempotent resubmission: no new alert
        receiver.wait_for(1)
        time.sleep(1.0)
        alerts = alerts_for(client, pid)
    assert len(alerts) == 1 and "self_harm" in alerts[0]["types"]
    assert len(receiver.deliveries) == 1
    key, payload = receiver.deliveries[0]
    assert payload["petition_id"] == pid and key


def test_ordinary_petition_raises_no_alert(alert_server, receiver):
    pid = f"O-{uuid.uuid4().hex[:8]}"
    with alert_server.client() as client:
        result = client.post("/v1/triage", json={"id": pid, "content": ORDINARY}).json()
        assert result["risk"]["level"] in ("none", "low")
        assert alerts_for(client, pid) == []


def test_alert_filters_and_ack(alert_server):
    pid = f"G-{uuid.uuid4().hex[:8]}"
    with alert_server.client() as client:
        client.post("/v1/triage", json={"id": pid, "content": GATHERING})
        (alert,) = alerts_for(client, pid)
        assert "gathering" in alert["types"]
        by_type = client.get("/v1/alerts", params={"type": "gathering", "status": "open"}).json()
        assert pid in {a["petition_id"] for a in by_type}
        acked = client.post(f"/v1/alerts/{alert['id']}/ack", json={"by": "operator-7", "note": "已联系属地街道"})
        assert acked.status_code == 200
        assert acked.json()["status"] == "acked" and acked.json()["acked_by"] == "operator-7"
        assert client.post(f"/v1/alerts/{alert['id']}/ack", json={"by": "operator-8"}).status_code == 409
        assert client.post("/v1/alerts/999999/ack", json={"by": "x"}).status_code == 404
        assert pid not in {a["petition_id"] for a in client.get("/v1/alerts", params={"status": "open"}).json()}


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
    assert receiver.deliveries[0][1]["petition_id"] == pid
