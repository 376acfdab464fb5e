"""Library exceptions. The API translates them to HTTP errors in one place (api/errors.py)."""

from __future__ import annotations


class TriageError(Exception):
    """Base class: `code` is the stable machine-readable error code, `field` the offending input field."""

    code = "triage_error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(TriageError):
    code = "invalid_input"
    status = 422


class TextTooLong(TriageError):
    code = "text_too_long"
    status = 413


class EmptyText(TriageError):
    code = "empty_text"
    status = 422


class NotFound(TriageError):
    code = "not_found"
    status = 404


class Conflict(TriageError):
    code = "conflict"
    status = 409


class BundleError(TriageError):
    """A model bundle is missing, incomplete, or does not match this library."""

    code = "bundle_error"
    status = 500


class NotFitted(TriageError):
    code = "not_fitted"
    status = 500


class DataError(TriageError):
    """A training or evaluation file has the wrong shape (missing columns, unknown labels, too few rows)."""

    code = "data_error"
    status = 422
