"""Bundles: manifest checks before unpickling, atomic never-overwrite saves, promote/rollback, hot switch in a server."""

from __future__ import annotations

import json
import shutil
import threading
import time

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT, RunningServer
from triage import bundle as bundles
from triage.departments import DepartmentTable
from triage.errors import BundleError
from triage.routing import Router
from triage.text import compose

EXAMPLES = {
    "城乡建设": ["小区路灯坏了没人修", "楼道电梯经常故障", "物业乱收停车费", "老旧小区改造进度太慢", "小区化粪池堵塞污水横流", "市政道路井盖破损"],
    "劳动和社会保障": ["公司拖欠工资三个月", "单位不给缴社保", "辞退员工不给经济补偿", "养老保险转移手续办不了", "农民工讨薪无门", "失业金申领被拒"],
    "教育文体": ["学校强制补课收费", "孩子入学学位不够", "幼儿园乱收费", "老师体罚学生", "体育馆不对外开放", "学校食堂饭菜质量差"],
}


def tiny_router() -> Router:
    texts, labels = [], []
    for label, items in EXAMPLES.items():
        for item in items:
            texts.append(compose(item, item + "，请有关部门尽快处理。"))
            labels.append(label)
    return Router().fit(texts, labels)


@pytest.fixture(scope="module")
def router():
    return tiny_router()


@pytest.fixture(scope="module")
def departments():
    return DepartmentTable.load(ROOT / "corpora" / "departments.yaml")


def save_bundle(directory, router, departments):
    return bundles.save(directory, components={"router": router, "departments": departments}, labels=list(router.classes_))


def test_save_load_round_trip_gives_identical_predictions(tmp_path, router, departments):
    path = save_bundle(tmp_path / "b1", router, departments)
    loaded = bundles.load(path)
    texts = [compose("路灯坏了", "小区路灯坏了一周"), compose("欠薪", "老板欠薪不还")]
    assert np.array_equal(loaded.router.predict_proba(texts), router.predict_proba(texts))
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] == "b1" and manifest["labels"] == list(router.classes_)
    assert {"python", "scikit-learn", "numpy"} <= set(manifest["libraries"])


def test_a_version_is_never_overwritten(tmp_path, router, departments):
    save_bundle(tmp_path / "b1", router, departments)
    with pytest.raises(BundleError, match="never overwritten"):
        save_bundle(tmp_path / "b1", router, departments)


def test_a_failed_save_leaves_nothing_behind(tmp_path, router):
    class Broken:
        def save(self, directory):
            raise OSError("disk full")

    with pytest.raises(OSError):
        bundles.save(tmp_path / "bad", components={"router": router, "departments": Broken()}, labels=["x"])
    assert list(tmp_path.iterdir()) == []


def test_manifest_is_checked_before_unpickling(tmp_path, router, departments):
    path = save_bundle(tmp_path / "b1", router, departments)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    (path / "router").joinpath("evil.bin").write_bytes(b"not a pickle")
    manifest["libraries"]["scikit-learn"] = "0.1.0"
    (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="scikit-learn 0.1.0"):
        bundles.load(path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda p: (p / "manifest.json").write_text("{", encoding="utf-8"), "not valid JSON"),
        (lambda p: shutil.rmtree(p / "router"), "component 'router'"),
        (lambda p: (p / "manifest.json").write_text('{"format_version": 99}', encoding="utf-8"), "lacks"),
    ],
)
def test_damaged_bundles_fail_with_a_clear_message(tmp_path, router, departments, damage, message):
    path = save_bundle(tmp_path / "b1", router, departments)
    damage(path)
    with pytest.raises(BundleError, match=message):
        bundles.load(path)


def test_promote_and_rollback_walk_the_history(tmp_path, router, departments):
    for name in ("b1", "b2", "b3"):
        save_bundle(tmp_path / name, router, departments)
    with pytest.raises(BundleError, match="no bundle is promoted"):
        bundles.active_name(tmp_path)
    bundles.promote(tmp_path, "b1")
    bundles.promote(tmp_path, "b2")
    assert bundles.promote(tmp_path, "b3") == "b2"
    assert [b["name"] for b in bundles.list_bundles(tmp_path) if b["active"]] == ["b3"]
    assert bundles.rollback(tmp_path) == "b2"
    assert bundles.rollback(tmp_path) == "b1"
    with pytest.raises(BundleError, match="nothing to roll back"):
        bundles.rollback(tmp_path)


def test_a_bundle_that_does_not_load_is_never_promoted(tmp_path, router, departments):
    save_bundle(tmp_path / "good", router, departments)
    bad = save_bundle(tmp_path / "bad", router, departments)
    bundles.promote(tmp_path, "good")
    shutil.rmtree(bad / "router")
    with pytest.raises(BundleError):
        bundles.promote(tmp_path, "bad")
    assert bundles.active_name(tmp_path) == "good"


@pytest.mark.slow
def test_promote_and_rollback_switch_a_running_server_without_losing_requests(tmp_path, shipped_models, router, departments):
    models = tmp_path / "models"
    shutil.copytree(shipped_models, models, symlinks=True)
    shipped = bundles.active_name(models)
    save_bundle(models / "tiny-1", router, departments)
    server = RunningServer(tmp_path, models).start()
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer():
        with server.client() as client:
            i = 0
            while not stop.is_set():
                i += 1
                response = client.post("/v1/triage", json={"content": f"小区路灯坏了第{i}次报修"})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.add(response.json()["model_version"])

    worker = threading.Thread(target=hammer)
    try:
        worker.start()
        time.sleep(1.0)
        bundles.promote(models, "tiny-1")
        deadline = time.monotonic() + 30
        while "tiny-1" not in versions and time.monotonic() < deadline:
            time.sleep(0.2)
        assert httpx.get(server.url + "/health").json()["model_version"] == "tiny-1"
        bundles.rollback(models)
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/health").json()["model_version"] != shipped and time.monotonic() < deadline:
            time.sleep(0.2)
        assert httpx.get(server.url + "/health").json()["model_version"] == shipped
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join(timeout=30)
        server.stop()
    assert statuses and set(statuses) == {200}, f"requests failed during the switch: {set(statuses)}"
    assert {shipped, "tiny-1"} <= versions
