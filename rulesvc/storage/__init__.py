"""Persistence: records and repository protocols, the SQLAlchemy store, engine factory and migrations."""

from rulesvc.audit.records import FeedRecord
from rulesvc.decisions.ports import (
    DecisionEvidence,
    DecisionStore,
    KeyStore,
    NewDecision,
    StoredDecision,
)
from rulesvc.people.model import ApiKeyRecord
from rulesvc.storage.engine import make_engine, migrate
from rulesvc.storage.sql import SqlStore

__all__ = [
    "ApiKeyRecord",
    "DecisionEvidence",
    "DecisionStore",
    "FeedRecord",
    "KeyStore",
    "NewDecision",
    "SqlStore",
    "StoredDecision",
    "make_engine",
    "migrate",
]
