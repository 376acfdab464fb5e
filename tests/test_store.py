"""The store on a real SQLite file: migrations, petition + result round-trip, idempotency conflicts, pending rows."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

from triage.errors import Conflict
from triage.schemas import CategoryOut, PetitionIn, Petitioner, RouteOut, TriageResult
from triage.store import petitions as repo
from triage.store.db import Database


POSTGRES_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set TRIAGE_TEST_POSTGRES_URL=postgresql+psycopg://… to run the store tests on PostgreSQL"))]


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        database = Database(POSTGRES_URL)
        from triage.store.models import Base

        with database.engine.begin() as connection:  # a clean schema for each test
            Base.metadata.drop_all(connection)
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    database.migrate()
    yield database
    database.dispose()


def result_for(pid: str, label: str = "城乡建设") -> TriageResult:
    return TriageResult(
        id=pid,
        model_version="test-1",
        category=CategoryOut(path=[label, "市政设施"], label=label, score=0.91),
        routes=[RouteOut(department_id="housing", department="市住房和城乡建设局", score=0.7)],
        needs_review=False,
    )


PETITION = PetitionIn(
    title="路灯坏了",
    content="枫林路路灯坏了一个月，联系电话13800138000",
    petitioner=Petitioner(id="U1", phone="13800138000"),
    received_at=datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc),
)


def test_migrate_creates_the_tables_and_is_repeatable(db):
    db.migrate()
    assert {"petitions", "triage_results", "alembic_version"} <= db.tables()


def test_petition_and_result_round_trip(db):
    with db.session() as session:
        repo.insert(session, "P1", PETITION)
    with db.session() as session:
        assert repo.pending_ids(session) == ["P1"]
        repo.save_result(session, result_for("P1"))
    with db.session() as session:
        record = repo.to_record(session, repo.get(session, "P1"))
    assert record.result == result_for("P1")
    assert record.received_at == PETITION.received_at
    assert "13800138000" not in record.content
    assert record.petitioner.phone != "13800138000"
    with db.session() as session:
        assert repo.pending_ids(session) == []


def test_newest_result_wins(db):
    with db.session() as session:
        repo.insert(session, "P2", PETITION)
        repo.save_result(session, result_for("P2", "城乡建设"))
        repo.save_result(session, result_for("P2", "交通运输"))
    with db.session() as session:
        assert repo.latest_result(session, "P2").category.label == "交通运输"


def test_same_id_same_petition_is_idempotent_and_other_content_conflicts(db):
    with db.session() as session:
        repo.insert(session, "P3", PETITION)
    with db.session() as session:
        assert repo.insert(session, "P3", PETITION).id == "P3"
    with pytest.raises(Conflict):
        with db.session() as session:
            repo.insert(session, "P3", PETITION.model_copy(update={"content": "另一件事"}))


def test_a_failed_unit_of_work_leaves_nothing(db):
    with pytest.raises(RuntimeError):
        with db.session() as session:
            repo.insert(session, "P4", PETITION)
            raise RuntimeError("crash before commit")
    with db.session() as session:
        assert repo.get(session, "P4") is None
