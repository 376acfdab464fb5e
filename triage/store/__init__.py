"""Persistence: SQLAlchemy 2 models and repository functions. SQLite by default, PostgreSQL by URL.

The store is the source of truth: every accepted petition is written before anything else is done with it.
"""

from triage.store.db import Database

__all__ = ["Database"]
