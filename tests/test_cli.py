"""The `triage` command and train.py as a data team runs them: real subprocesses, the shipped bundle."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import MODELS, ROOT

ROWS = [
    {"id": "a1", "title": "路灯坏了", "content": "小区门口路灯坏了一个月，晚上很黑。"},
    {"id": "a2", "title": "", "content": "公司拖欠工资三个月，老板联系不上。"},
    {"id": "a3", "title": "", "content": "  "},
    {"id": "a4", "title": "幼儿园收费", "content": "幼儿园乱收费，每月多收三百元兴趣班费用。"},
]


def run(args: list[str], tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TRIAGE_MODELS_DIR": str(MODELS), "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
                   "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)


def write_csv(path, rows, fields=("id", "title", "content")):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_predict_writes_one_result_per_row_in_order_and_stores_nothing(tmp_path):
    write_csv(tmp_path / "in.csv", ROWS)
    done = run(["-m", "triage.cli", "predict", "in.csv", "--output", "out.jsonl"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [r["id"] for r in ROWS]
    assert lines[2]["error"]["code"] == "empty_text"  # a row without text is reported, not dropped
    for line in (lines[0], lines[1], lines[3]):
        assert line["category"]["label"] and len(line["routes"]) == 3 and "risk" in line
    assert lines[1]["category"]["label"] == "劳动和社会保障"
    assert not (tmp_path / "cli.db").exists(), "predict must not write to the store"


@pytest.mark.slow
def test_predict_in_worker_processes_gives_the_same_lines_in_the_same_order(tmp_path):
    rows = ROWS + [{"id": f"b{i}", "title": "", "content": text} for i, text in enumerate(
        ["楼道里一股煤气味已经两天了", "再不解决我就从楼上跳下去", "公交车到站不停", "学校食堂饭菜变质"])]
    write_csv(tmp_path / "in.csv", rows)
    outputs = {}
    for workers in ("1", "2"):
        done = run(["-m", "triage.cli", "predict", "in.csv", "--batch-size", "3", "--workers", workers,
                    "--output", f"out{workers}.jsonl"], tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        lines = [json.loads(line) for line in (tmp_path / f"out{workers}.jsonl").read_text(encoding="utf-8").splitlines()]
        for line in lines:
            line.pop("elapsed_ms", None)
        outputs[workers] = lines
    assert [line["id"] for line in outputs["2"]] == [r["id"] for r in rows]
    assert outputs["2"] == outputs["1"]
    assert outputs["2"][5]["risk"]["level"] in ("high", "critical")


def test_predict_reads_jsonl_too(tmp_path):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS[:2]), encoding="utf-8")
    done = run(["-m", "triage.cli", "predict", "in.jsonl"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ["a1", "a2"]


def test_bundle_list_marks_the_active_bundle(tmp_path):
    done = run(["-m", "triage.cli", "bundle", "list"], tmp_path)
    assert done.returncode == 0
    active = json.loads((MODELS / "active.json").read_text(encoding="utf-8"))["active"]
    assert any(line.startswith("*") and active in line for line in done.stdout.splitlines())


@pytest.mark.parametrize(
    ("rows", "fields", "message"),
    [
        ([{"id": "1", "title": "t", "content": "c"}], ("id", "title", "content"), "lacks column(s) category"),
        ([{"title": "t", "content": "c", "category": "天气预报"}], ("title", "content", "category"), "unknown category '天气预报'"),
        ([{"title": "t", "content": f"路灯坏了{i}", "category": "城乡建设"} for i in range(3)], ("title", "content", "category"), "too few rows"),
    ],
)
def test_train_py_refuses_bad_files_clearly(tmp_path, rows, fields, message):
    write_csv(tmp_path / "bad.csv", rows, fields)
    done = run([str(ROOT / "train.py"), "--data", "bad.csv", "--out", str(tmp_path / "m" / "x"), "--no-corpora", "--no-risk"], tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "m" / "x").exists()


def test_train_py_refuses_a_file_that_is_not_utf8(tmp_path):
    (tmp_path / "gbk.csv").write_bytes("title,content,category\n路灯,坏了,城乡建设\n".encode("gbk"))
    done = run([str(ROOT / "train.py"), "--data", "gbk.csv", "--out", str(tmp_path / "m" / "x")], tmp_path)
    assert done.returncode == 2 and "not UTF-8" in done.stderr


def test_ingest_stores_rows_in_order_and_clusters_lists_the_burst_pipe(tmp_path):
    from tests.api.test_clusters import OTHER_DISTRICT, PIPE

    rows = [{"id": f"pipe-{i}", "user": user, "title": title, "content": content, "time": f"2026-11-24 {hhmm}:00"}
            for i, (user, title, content, hhmm) in enumerate(PIPE)]
    user, title, content, hhmm = OTHER_DISTRICT
    rows.append({"id": "pipe-other", "user": user, "title": title, "content": content, "time": f"2026-11-24 {hhmm}:00"})
    rows.append({"id": "pipe-again", "user": "U-zhang", "title": "枫林路水管爆了还没修",
                 "content": "上午反映的A3区枫林路和桐梓坡路交叉口自来水管爆裂，到现在还在冒水，请尽快抢修。", "time": "2026-11-24 15:00:00"})
    rows.append({"id": "blank", "user": "U-x", "title": "", "content": "   ", "time": "2026-11-24 16:00:00"})
    write_csv(tmp_path / "stream.csv", rows, fields=("id", "user", "time", "title", "content"))
    env = {"TRIAGE_INDEX_DIR": str(tmp_path / "index")}
    done = run(["-m", "triage.cli", "ingest", "stream.csv", "--output", "out.jsonl"], tmp_path, **env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ingested 6 rows" in done.stderr
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [r["id"] for r in rows]
    assert lines[-1]["error"]["code"] == "invalid_input"  # reported in its place, not dropped
    assert lines[2]["cluster"] is not None and lines[2]["cluster"]["petitioners"] == 3
    assert lines[3]["cluster"] is None or lines[3]["cluster"]["id"] != lines[2]["cluster"]["id"]
    assert {d["id"]: d["kind"] for d in lines[4]["duplicates"]}.get("pipe-0") == "repeat"

    listed = run(["-m", "triage.cli", "clusters", "--json"], tmp_path, **env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    clusters = json.loads(listed.stdout)
    pipe = next(c for c in clusters if c["id"] == lines[2]["cluster"]["id"])
    assert {"pipe-0", "pipe-1", "pipe-2"} <= set(pipe["members"]) and "pipe-other" not in pipe["members"]
    assert pipe["title"] and pipe["heat"] > 0 and pipe["size"] >= 3
