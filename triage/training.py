"""Training a bundle from a data team's tickets: load and check the file, fit, evaluate, save, report.

`train.py` and `triage train` are thin wrappers around `train_bundle`.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from triage import bundle as bundles
from triage.errors import DataError
from triage.evaluation import evaluate_predictions, to_markdown
from triage.pipeline import ReviewPolicy
from triage.settings import Settings
from triage.text import compose

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("content", "category")
MIN_ROWS_PER_CLASS = 5
LEVEL1_CLASSES = (
    "城乡建设", "劳动和社会保障", "教育文体", "商贸旅游", "环境保护", "卫生计生", "交通运输",
    "党务政务", "农村农业", "国土资源", "政法", "民政", "科技与信息产业", "纪检监察", "经济管理",
)  # fmt: skip


@dataclass
class Dataset:
    """Petitions read from one file: composed texts, labels, and where they came from."""

    texts: list[str]
    labels: list[str]
    ids: list[str]
    departments: list[str | None] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV (UTF-8, header) or JSONL file, as dicts of strings."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist", field="data")
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            rows = []
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            rows.append({k: "" if v is None else str(v) for k, v in json.loads(line).items()})
                        except json.JSONDecodeError as exc:
                            raise DataError(f"{path}:{number} is not valid JSON: {exc.msg}") from exc
            return rows
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return [{k: v or "" for k, v in row.items() if k} for row in csv.DictReader(handle)]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc


def load_dataset(path: str | Path, *, known_labels: tuple[str, ...] = LEVEL1_CLASSES, need_labels: bool = True) -> Dataset:
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path} has no rows")
    columns = set(rows[0])
    needed = REQUIRED_COLUMNS if need_labels else ("content",)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {', '.join(missing)}; it has {', '.join(sorted(columns))}")
    texts, labels, ids, departments = [], [], [], []
    for number, row in enumerate(rows, 2):
        if not (row.get("content") or row.get("title") or "").strip():
            continue  # a row with no text at all teaches nothing
        label = (row.get("category") or "").strip()
        if need_labels and label not in known_labels:
            raise DataError(
                f"{path} row {number}: unknown category {label!r}; categories are the 15 first-level classes: "
                + "、".join(known_labels)
            )
        texts.append(compose(row.get("title"), row.get("content")))
        labels.append(label)
        ids.append(row.get("id") or str(number - 1))
        departments.append(row.get("department") or None)
    return Dataset(texts, labels, ids, departments, source=bundles.file_digest(Path(path)) | {"rows": len(texts)})


def check_class_sizes(dataset: Dataset, minimum: int = MIN_ROWS_PER_CLASS) -> None:
    small = {label: n for label, n in Counter(dataset.labels).items() if n < minimum}
    if small:
        listing = ", ".join(f"{label} ({n})" for label, n in sorted(small.items()))
        raise DataError(f"too few rows for: {listing}; each category needs at least {minimum} to train")


AUTHORED_FILES = ("authored.csv", "authored_hotline.csv")


def corpus_fill(dataset: Dataset, corpora_dir: Path, *, below: int = 30) -> list[Dataset]:
    """Our authored petitions (split=train) for categories the data team's file has fewer than `below` rows of."""
    counts = Counter(dataset.labels)
    parts = []
    for name in AUTHORED_FILES:
        authored = Path(corpora_dir) / "routing" / name
        if not authored.is_file():
            continue
        rows = [r for r in read_rows(authored) if r.get("split", "train") == "train" and counts[r["category"]] < below]
        if rows:
            parts.append(
                Dataset(
                    texts=[compose(r.get("title"), r.get("content")) for r in rows],
                    labels=[r["category"] for r in rows],
                    ids=[r.get("id", "") for r in rows],
                    departments=[None] * len(rows),
                    source=bundles.file_digest(authored)
                    | {"rows": len(rows), "used_for": sorted({r["category"] for r in rows})},
                )
            )
    return parts


def merge(*parts: Dataset | None) -> Dataset:
    kept = [p for p in parts if p is not None]
    return Dataset(
        texts=[t for p in kept for t in p.texts],
        labels=[t for p in kept for t in p.labels],
        ids=[t for p in kept for t in p.ids],
        departments=[t for p in kept for t in p.departments],
    )


def evaluate_router(router, dataset: Dataset, policy: ReviewPolicy) -> dict[str, Any]:
    proba = router.predict_proba(dataset.texts)
    top2 = np.sort(proba, axis=1)[:, -2:]
    review = (top2[:, 1] < policy.min_score) | ((top2[:, 1] - top2[:, 0]) < policy.min_margin)
    return evaluate_predictions(dataset.labels, proba, router.classes_, review_mask=review)


def active_bundle_report(settings: Settings, dataset: Dataset, policy: ReviewPolicy) -> dict[str, Any] | None:
    """The same evaluation for the currently promoted bundle, for the report's comparison; None if there is none."""
    try:
        path = bundles.resolve(settings.models_dir)
        active = bundles.load(path, components=("router",))
    except Exception as exc:  # no active bundle, or one this library cannot read: nothing to compare with
        log.info("no comparison with the active bundle: %s", exc)
        return None
    return evaluate_router(active.router, dataset, policy) | {"bundle": path.name}


def train_bundle(
    data: str | Path | list[str | Path],
    out: str | Path,
    *,
    eval_data: str | Path | None = None,
    settings: Settings,
    use_corpora: bool = True,
    with_risk: bool = True,
    progress: bool = True,
    taxonomy: str | Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Fit router (+ risk detector), save a new bundle at `out`, write report.md/report.json inside it."""
    from tqdm import tqdm

    from triage.departments import DepartmentTable
    from triage.routing import Router

    steps = tqdm(total=5, desc="train", unit="step", disable=not progress)
    files = [data] if isinstance(data, (str, Path)) else list(data)
    parts = [load_dataset(path) for path in files]
    train = merge(*parts)
    sources = [part.source | {"role": "train"} for part in parts]
    extra = corpus_fill(train, settings.corpora_dir) if use_corpora else []
    sources += [part.source | {"role": "train (authored, for categories the data lacks)"} for part in extra]
    combined = merge(train, *extra)
    check_class_sizes(combined)
    evaluation = load_dataset(eval_data) if eval_data else None
    if evaluation is not None:
        sources.append(evaluation.source | {"role": "eval"})
    steps.set_postfix_str(f"{len(combined.texts)} rows, {len(set(combined.labels))} categories")
    steps.update()

    router = Router(taxonomy=_taxonomy(settings, taxonomy)).fit(combined.texts, combined.labels)
    steps.update()
    departments = DepartmentTable.load(settings.corpora_dir / "departments.yaml")
    components: dict[str, Any] = {"router": router, "departments": departments}
    if with_risk:
        risk = _train_risk(settings, progress)
        if risk is not None:
            components["risk"] = risk
    steps.update()

    policy = ReviewPolicy.from_settings(settings)
    report: dict[str, Any] = {"train_rows": len(combined.texts), "labels": sorted(set(combined.labels))}
    baseline = None
    if evaluation is not None:
        report["eval"] = evaluate_router(router, evaluation, policy)
        baseline = active_bundle_report(settings, evaluation, policy)
        report["active_bundle"] = baseline
    steps.update()

    metrics = {k: report["eval"][k] for k in ("macro_f1", "accuracy", "ece")} if evaluation is not None else {}
    path = bundles.save(out, components=components, labels=list(router.classes_), metrics=metrics, data_sources=sources)
    (path / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    markdown = to_markdown(report["eval"], title=f"Evaluation of {path.name}", baseline=baseline) if evaluation else (
        f"# {path.name}\n\nTrained on {len(combined.texts)} rows; no --eval file was given.\n"
    )
    (path / "report.md").write_text(markdown, encoding="utf-8")
    steps.update()
    steps.close()
    return path, report


def _taxonomy(settings: Settings, path: str | Path | None):
    """The category tree for level-2 suggestions, saved inside the router; None when no file is at hand."""
    from triage.taxonomy import Taxonomy

    path = Path(path or settings.taxonomy_path or settings.data_dir / "routing" / "taxonomy.csv")
    if not path.is_file():
        log.warning("no taxonomy at %s: the bundle will suggest first-level categories only", path)
        return None
    return Taxonomy.load(path)


def _train_risk(settings: Settings, progress: bool = False):
    """The risk detector, when its module is present; routing still trains without it. With its level model this
    step fits the detector six times (≈ 4 min on 2 cores): `progress` shows the folds."""
    try:
        from triage import risk
    except ImportError:
        log.warning("triage.risk is not available: the bundle has no risk detector")
        return None
    return risk.train_detector(data_dir=settings.data_dir, corpora_dir=settings.corpora_dir, progress=progress)
