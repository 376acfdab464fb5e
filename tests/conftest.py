"""Shared fixtures: real objects only — a temp SQLite file, the shipped bundle, a real uvicorn on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
MODELS = ROOT / "models"

needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "routing" / "train.csv").is_file(),
    reason="../shared/data is absent: this test reads the real shared data",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    """`triage serve` in a subprocess, with its own database and models directory."""

    def __init__(self, workdir: Path, models_dir: Path, env: dict[str, str] | None = None):
        self.workdir = workdir
        self.models_dir = models_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "TRIAGE_DATABASE_URL": f"sqlite:///{workdir / 'triage.db'}",
            "TRIAGE_MODELS_DIR": str(models_dir),
            "TRIAGE_LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / f"server-{self.port}.log"

    def start(self, timeout: float = 90.0) -> "RunningServer":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "triage.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log_path.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)


@pytest.fixture(scope="session")
def shipped_models(tmp_path_factory) -> Path:
    """A private copy of models/ (pointer and default bundle) so tests may promote without touching the repo."""
    if not (MODELS / "active.json").is_file():
        pytest.fail("models/active.json is missing: the repo must ship a promoted default bundle")
    target = tmp_path_factory.mktemp("models")
    for child in MODELS.iterdir():
        if child.is_dir():
            (target / child.name).symlink_to(child, target_is_directory=True)
        else:
            shutil.copy(child, target / child.name)
    return target


@pytest.fixture(scope="session")
def server(tmp_path_factory, shipped_models) -> RunningServer:
    running = RunningServer(tmp_path_factory.mktemp("server"), shipped_models).start()
    yield running
    running.stop()


@pytest.fixture()
def client(server):
    with server.client() as http:
        yield http
