"""POST /v1/triage, /v1/triage/batch and GET /v1/petitions/{id} against a real running server."""

from __future__ import annotations

import uuid

import httpx
import pytest

RESULT_FIELDS = {
    "id", "model_version", "category", "routes", "needs_review", "review_reasons", "evidence", "risk",
    "duplicates", "cluster", "elapsed_ms",
}  # fmt: skip

STREETLIGHT = {
    "title": "小区门口路灯坏了一个月没人修",
    "content": "A市A3区枫林路18号小区门口的三盏路灯坏了一个多月，晚上很黑，老人孩子出门不安全，请尽快维修。",
    "channel": "hotline",
}


def new_id() -> str:
    return f"T-{uuid.uuid4().hex[:10]}"


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["message"]
    if field is not None:
        assert body["error"]["field"] == field
    return body["error"]


def test_triage_returns_the_full_contract(client):
    response = client.post("/v1/triage", json={**STREETLIGHT, "id": new_id(), "petitioner": {"phone": "13800138000"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert RESULT_FIELDS <= set(body)
    assert body["category"]["label"] == body["category"]["path"][0]
    assert 0 < body["category"]["score"] <= 1
    assert 1 <= len(body["routes"]) <= 3
    assert all(set(r) == {"department_id", "department", "score"} for r in body["routes"])
    scores = [r["score"] for r in body["routes"]]
    assert scores == sorted(scores, reverse=True)
    assert body["risk"]["level"] in {"none", "low", "medium", "high", "critical"}
    assert body["duplicates"] == [] or isinstance(body["duplicates"], list)
    assert body["elapsed_ms"] >= 0


def test_streetlight_goes_to_urban_construction_with_real_evidence(client):
    body = client.post("/v1/triage", json={**STREETLIGHT, "id": new_id()}).json()
    assert body["category"]["label"] == "城乡建设"
    text = STREETLIGHT["title"] + STREETLIGHT["content"]
    assert body["evidence"], "explain must return the words that drove the decision"
    assert all(e["text"].replace(" ", "") in text for e in body["evidence"])


def test_same_id_twice_returns_the_stored_result(client):
    pid = new_id()
    first = client.post("/v1/triage", json={**STREETLIGHT, "id": pid}).json()
    second = client.post("/v1/triage", json={**STREETLIGHT, "id": pid}).json()
    assert second == first


def test_reused_id_with_other_content_is_a_conflict(client):
    pid = new_id()
    assert client.post("/v1/triage", json={**STREETLIGHT, "id": pid}).status_code == 200
    response = client.post("/v1/triage", json={**STREETLIGHT, "id": pid, "content": "完全不同的一件事：单位拖欠工资三个月。"})
    assert_error(response, 409, "id")


def test_accepted_petition_can_be_read_back_with_phone_masked(client):
    pid = new_id()
    posted = client.post(
        "/v1/triage", json={**STREETLIGHT, "id": pid, "content": STREETLIGHT["content"] + "联系电话13800138000"}
    ).json()
    record = client.get(f"/v1/petitions/{pid}").json()
    assert record["id"] == pid
    assert record["result"] == posted
    assert "13800138000" not in record["content"]


def test_unknown_petition_is_404(client):
    assert_error(client.get("/v1/petitions/no-such-id"), 404)


def test_batch_keeps_order_and_ids(client):
    ids = [new_id() for _ in range(3)]
    petitions = [
        {"id": ids[0], **STREETLIGHT},
        {"id": ids[1], "content": "公司拖欠我们二十多名工人三个月工资，老板不接电话，请劳动部门帮忙讨薪。"},
        {"id": ids[2], "content": "孩子所在小学课后服务收费不透明，学校强制参加，希望教育局核查。"},
    ]
    response = client.post("/v1/triage/batch", json={"petitions": petitions})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == ids
    assert results[1]["category"]["label"] == "劳动和社会保障"
    assert results[2]["category"]["label"] == "教育文体"


def test_batch_over_the_limit_is_refused(client):
    petitions = [{"content": "路灯坏了"}] * 1001
    assert_error(client.post("/v1/triage/batch", json={"petitions": petitions}), 422)


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"content": ""}, 422, "content"),
        ({"content": "   \n\t  "}, 422, "content"),
        ({"title": "只有标题"}, 422, "content"),
        ({"content": 12345}, 422, "content"),
        ({"content": "路灯坏了", "channel": "fax"}, 422, "channel"),
        ({"content": "路灯坏了", "petitioner": "张三"}, 422, "petitioner"),
        ({"content": "路灯坏了", "received_at": "yesterday"}, 422, "received_at"),
        ({"content": "<script>alert(1)</script>"}, 422, "content"),
    ],
)
def test_bad_fields_get_a_clear_4xx(client, payload, status, field):
    assert_error(client.post("/v1/triage", json=payload), status, field)


def test_text_over_the_cap_is_413(client):
    assert_error(client.post("/v1/triage", json={"content": "路" * 20_001}), 413, "content")


def test_invalid_utf8_body_is_400(client):
    body = b'{"content": "\xff\xfe\xfd"}'
    response = client.post("/v1/triage", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400)


def test_non_json_body_is_400(client):
    response = client.post("/v1/triage", content=b"content=hello", headers={"content-type": "application/json"})
    assert_error(response, 400)


@pytest.mark.parametrize(
    "content",
    [
        "<p>小区<b>路灯</b>坏了</p><script>steal()</script>一个月没人修",
        "小区路灯坏了😡😡一个月没人修🙏",
        "這條馬路的路燈壞了一個多月，晚上很黑，請儘快維修。",
        "The streetlights outside our compound have been broken for a month.",
        "ｌｕ灯坏了，ＡＢＣ小区",
    ],
)
def test_messy_but_valid_text_is_triaged(client, content):
    pid = new_id()
    response = client.post("/v1/triage", json={"id": pid, "content": content})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == pid and body["routes"]
    assert client.get(f"/v1/petitions/{pid}").status_code == 200


def test_traditional_text_routes_like_simplified(client):
    simplified = client.post("/v1/triage", json={"content": "这条马路的路灯坏了一个多月，晚上很黑，请尽快维修。"}).json()
    traditional = client.post("/v1/triage", json={"content": "這條馬路的路燈壞了一個多月，晚上很黑，請儘快維修。"}).json()
    assert traditional["category"] == simplified["category"]


def test_english_only_text_needs_review(client):
    body = client.post("/v1/triage", json={"content": "The streetlights outside our compound are broken."}).json()
    assert body["needs_review"] is True
    assert body["review_reasons"]


def test_health_and_docs(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model_version"]
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/triage" in spec["paths"] and "/v1/triage/batch" in spec["paths"]


def test_the_same_id_sent_concurrently_is_stored_once(server):
    import concurrent.futures

    pid = new_id()

    def send(_):
        with server.client() as http:
            return http.post("/v1/triage", json={**STREETLIGHT, "id": pid})

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(send, range(6)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["model_version"] + str(r.json()["category"]) for r in responses}) == 1
    with server.client() as http:
        assert http.get(f"/v1/petitions/{pid}").json()["id"] == pid
