"""Routing evaluation: the figures a data team reads before promoting a bundle, as a dict and as Markdown.

Macro-F1 and accuracy, per-class precision/recall, the confusion matrix, calibration (ECE, reliability bins) and
the coverage-vs-accuracy curve that tells how many petitions can be auto-routed at what accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

COVERAGE_THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> tuple[float, list[dict]]:
    """Top-label ECE with equal-width bins, and the per-bin table (reliability diagram data)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    table = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence >= lo) & (confidence <= hi)
        if not mask.any():
            continue
        conf, acc = float(confidence[mask].mean()), float(correct[mask].mean())
        ece += mask.mean() * abs(conf - acc)
        table.append({"bin": f"{lo:.2f}-{hi:.2f}", "n": int(mask.sum()), "confidence": round(conf, 4), "accuracy": round(acc, 4)})
    return float(ece), table


def coverage_curve(confidence: np.ndarray, correct: np.ndarray, thresholds: Sequence[float] = COVERAGE_THRESHOLDS) -> list[dict]:
    rows = []
    for threshold in thresholds:
        mask = confidence >= threshold
        rows.append(
            {
                "threshold": threshold,
                "coverage": round(float(mask.mean()), 4),
                "accuracy": round(float(correct[mask].mean()), 4) if mask.any() else None,
            }
        )
    return rows


def coverage_at_accuracy(confidence: np.ndarray, correct: np.ndarray, target: float = 0.97) -> dict[str, float]:
    """The largest share of petitions (most confident first) whose accuracy is still ≥ target."""
    order = np.argsort(-confidence)
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(running >= target)[0]
    if not len(ok):
        return {"target_accuracy": target, "coverage": 0.0, "threshold": 1.0}
    last = int(ok[-1])
    return {"target_accuracy": target, "coverage": round((last + 1) / len(order), 4), "threshold": round(float(confidence[order][last]), 4)}


def evaluate_predictions(
    labels: Sequence[str],
    proba: np.ndarray,
    classes: Sequence[str],
    *,
    review_mask: np.ndarray | None = None,
) -> dict[str, Any]:
    """All routing figures from true labels and a calibrated probability matrix (rows = petitions)."""
    classes = list(classes)
    y_true = np.asarray(labels)
    top = proba.argmax(axis=1)
    y_pred = np.asarray([classes[i] for i in top])
    confidence = proba.max(axis=1)
    correct = (y_pred == y_true).astype(float)
    present = sorted(set(y_true))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    ece, reliability = expected_calibration_error(confidence, correct)
    report: dict[str, Any] = {
        "rows": int(len(y_true)),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)), 4),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "ece": round(ece, 4),
        "per_class": {
            label: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4), "support": int(s)}
            for label, p, r, f, s in zip(present, precision, recall, f1, support)
        },
        "confusion": {"labels": present, "matrix": confusion_matrix(y_true, y_pred, labels=present).tolist()},
        "reliability": reliability,
        "coverage_curve": coverage_curve(confidence, correct),
        "coverage_at_97": coverage_at_accuracy(confidence, correct, 0.97),
    }
    if review_mask is not None:
        auto = ~review_mask
        report["review_policy"] = {
            "auto_routed_share": round(float(auto.mean()), 4),
            "auto_routed_accuracy": round(float(correct[auto].mean()), 4) if auto.any() else None,
            "review_share": round(float(review_mask.mean()), 4),
        }
    return report


def to_markdown(report: dict[str, Any], *, title: str = "Routing evaluation", baseline: dict[str, Any] | None = None) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- rows: {report['rows']}", f"- macro-F1: **{report['macro_f1']:.4f}**", f"- accuracy: {report['accuracy']:.4f}"]
    lines += [f"- ECE (15 bins): {report['ece']:.4f}"]
    cov = report["coverage_at_97"]
    lines += [f"- coverage at ≥ 97% accuracy: {cov['coverage']:.1%} (threshold {cov['threshold']})"]
    if "review_policy" in report:
        policy = report["review_policy"]
        lines += [
            f"- review policy: {policy['auto_routed_share']:.1%} auto-routed at accuracy "
            f"{policy['auto_routed_accuracy']}, {policy['review_share']:.1%} sent to review"
        ]
    if baseline:
        lines += ["", "## Against the active bundle", "", "| figure | this | active |", "|---|---|---|"]
        for key in ("macro_f1", "accuracy", "ece"):
            lines.append(f"| {key} | {report[key]:.4f} | {baseline.get(key, float('nan')):.4f} |")
    lines += ["", "## Per class", "", "| category | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, row in report["per_class"].items():
        lines.append(f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    lines += ["", "## Coverage vs accuracy", "", "| min top score | coverage | accuracy |", "|---|---|---|"]
    for row in report["coverage_curve"]:
        acc = "—" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        lines.append(f"| {row['threshold']:.2f} | {row['coverage']:.1%} | {acc} |")
    lines += ["", "## Calibration (reliability)", "", "| bin | n | mean confidence | accuracy |", "|---|---|---|---|"]
    for row in report["reliability"]:
        lines.append(f"| {row['bin']} | {row['n']} | {row['confidence']:.3f} | {row['accuracy']:.3f} |")
    labels = report["confusion"]["labels"]
    lines += ["", "## Confusion matrix (rows = truth)", "", "| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for label, row in zip(labels, report["confusion"]["matrix"]):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
