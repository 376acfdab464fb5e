"""Every knob of the service, read from `TRIAGE_*` environment variables (or a `.env` file), with documented defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    environment: str = Field("development", description="development | production; production refuses unsafe defaults.")
    database_url: str = Field(
        "sqlite:///var/triage.db", description="SQLAlchemy URL. SQLite by default; postgresql+psycopg://… for PostgreSQL."
    )
    models_dir: Path = Field(PROJECT_ROOT / "models", description="Where model bundles live.")
    bundle: str | None = Field(None, description="Bundle directory name to serve; default: the promoted one.")
    data_dir: Path = Field(PROJECT_ROOT.parent / "shared" / "data", description="The shared real data (train/bench only).")
    corpora_dir: Path = Field(PROJECT_ROOT / "corpora", description="The project's own written data.")

    host: str = "127.0.0.1"
    port: int = 8000

    # input limits
    max_content_chars: int = Field(20_000, description="Petition text longer than this is refused with 413.")
    max_title_chars: int = 500
    max_batch: int = Field(1000, description="Most petitions in one POST /v1/triage/batch.")
    max_body_bytes: int = Field(64 * 1024 * 1024, description="Larger request bodies are refused with 413 before parsing.")

    # routing decisions
    review_min_score: float = Field(0.55, description="Top category probability below this → needs_review.")
    review_min_margin: float = Field(0.15, description="Top-1 minus top-2 probability below this → needs_review.")
    routes_top_k: int = 3

    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    return Settings()
