"""Ruleset lifecycle: versions in the database, drafts through a test gate and four-eyes approval,
effective-dated publishing, rollback, diff, backtest, as-of books and hot reload."""

from rulesvc.lifecycle.errors import (
    BadRequestError,
    CasesFailedError,
    EvidenceFrozenError,
    ForbiddenError,
    ForeignCaseFileError,
    FourEyesError,
    GapsNotAcceptedError,
    GapsUnexplainedError,
    InvalidDraftError,
    InvalidSheetError,
    LifecycleError,
    NoChangeError,
    NotFoundError,
    StaleBaseError,
    StaleDraftError,
    StateError,
)
from rulesvc.lifecycle.registry import BookRegistry, LiveBook
from rulesvc.lifecycle.reload import ReloadWatcher
from rulesvc.lifecycle.service import LifecycleService, Publication
from rulesvc.lifecycle.timeline import EPOCH, BookFactory, BookTimeline

__all__ = [
    "EPOCH",
    "BadRequestError",
    "BookFactory",
    "BookRegistry",
    "BookTimeline",
    "CasesFailedError",
    "EvidenceFrozenError",
    "ForbiddenError",
    "ForeignCaseFileError",
    "FourEyesError",
    "GapsNotAcceptedError",
    "GapsUnexplainedError",
    "InvalidDraftError",
    "InvalidSheetError",
    "LifecycleError",
    "LifecycleService",
    "LiveBook",
    "NoChangeError",
    "NotFoundError",
    "Publication",
    "ReloadWatcher",
    "StaleBaseError",
    "StaleDraftError",
    "StateError",
]
