"""Logging set-up: structured key=value lines, with phone numbers, ID numbers and bank cards masked first."""

from __future__ import annotations

import logging
import sys

from triage import text


class _MaskingFilter(logging.Filter):
    """Fallback used until triage.text provides PiiMaskingFilter: masks the fully formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = text.mask_pii(record.getMessage())
        record.args = None
        return True


def masking_filter() -> logging.Filter:
    factory = getattr(text, "PiiMaskingFilter", _MaskingFilter)
    return factory()


def configure_logging(level: str = "INFO") -> None:
    """Idempotent: the root handler masks PII in every record before it is written."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in root.handlers:
        if getattr(handler, "_triage", False):
            return
    handler = logging.StreamHandler(sys.stderr)
    handler._triage = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"))
    handler.addFilter(masking_filter())
    root.addHandler(handler)
