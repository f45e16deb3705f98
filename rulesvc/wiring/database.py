"""Opening a database for the service, the worker and the command line (engine, migrations, stores)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from rulesvc.audit.chain import Problem, VerifyResult
from rulesvc.audit.checkpoints import CheckpointDirectory, Signer, checked_checkpoints, trusted_keys
from rulesvc.datakeys import Keyring
from rulesvc.decisions.ports import KeyStore
from rulesvc.decisions.service import verify_all
from rulesvc.delivery.notify import KEYS, shared_notifier
from rulesvc.lifecycle.ports import KIND_CALENDAR, KIND_RULESET, RulesetStore
from rulesvc.lifecycle.queries import ruleset_problems
from rulesvc.people.service import PeopleService
from rulesvc.settings import Settings
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import SqlStore, make_engine, migrate
from rulesvc.storage.evidence_reads import SqlEvidenceReader
from rulesvc.storage.inputs import rotate, use_keyring
from rulesvc.storage.people_store import SqlPeopleStore
from rulesvc.storage.ruleset_store import SqlRulesetStore
from rulesvc.storage.webhook_store import SqlWebhookStore


def open_database(url: str, *, keyring: Keyring | None = None, **options: Any) -> Engine:
    """An engine on `url`, its schema brought to the newest migration (safe when processes race); clear
    inputs written through it are encrypted with `keyring` (`rulesvc.datakeys`) when one is given."""
    engine = make_engine(url, **options)
    migrate(engine)
    use_keyring(engine, keyring)
    return engine


@contextmanager
def key_store(settings: Settings) -> Iterator[KeyStore]:
    """The API keys of the configured database (migrated first), for one command."""
    engine = open_database(settings.database_url)
    try:
        yield SqlStore(engine, group_commit=False)
    finally:
        engine.dispose()


@contextmanager
def people_admin(settings: Settings) -> Iterator[PeopleService]:
    """People and key administration on the configured database (migrated first), for one command. Changes
    that alter what a key grants are announced on Redis when configured (running services drop their key
    caches at once; without Redis within `key_cache_seconds`)."""
    engine = open_database(settings.database_url)

    def changed() -> None:
        if settings.redis_url:
            notifier = shared_notifier(settings.redis_url)
            notifier.publish(KEYS)
            notifier.close()

    try:
        yield PeopleService(SqlPeopleStore(engine), SystemClock(), changed)
    finally:
        engine.dispose()


@contextmanager
def ruleset_versions(url: str) -> Iterator[RulesetStore]:
    """The ruleset versions of the database at `url` (migrated first), for one command."""
    engine = open_database(url)
    try:
        yield SqlRulesetStore(engine, KIND_RULESET)
    finally:
        engine.dispose()


def table_checks(engine: Engine) -> list[Callable[[], list[Problem]]]:
    """`verify`'s checks of the other tables the chain vouches for: ruleset and calendar versions, API keys
    and principals (what they grant)."""
    return [
        partial(ruleset_problems, SqlRulesetStore(engine, KIND_RULESET)),
        partial(ruleset_problems, SqlRulesetStore(engine, KIND_CALENDAR)),
        SqlPeopleStore(engine).grant_problems,
        SqlWebhookStore(engine).grant_problems,
    ]


def verify_database(
    settings: Settings, checkpoint_folders: Sequence[Path], public_keys: Sequence[str]
) -> VerifyResult:
    """The whole audit check of a database (or a restored dump), offline: nothing is written. The chain
    must extend every signed checkpoint of `checkpoint_folders` (default: the configured directory)."""
    engine = make_engine(settings.database_url)
    use_keyring(engine, settings.keyring())  # to check the clear inputs against the chain
    directory = settings.checkpoint_directory()
    folders = [CheckpointDirectory(p) for p in checkpoint_folders or ([directory] if directory else [])]
    signer = Signer(None, [*public_keys, *trusted_keys(settings, directory)])
    try:
        return verify_all(
            SqlStore(engine, group_commit=False),
            SqlEvidenceReader(engine),
            checked_checkpoints(folders, signer),
            table_checks(engine),
        )
    finally:
        engine.dispose()


def rotate_data_keys(settings: Settings) -> dict[str, int]:
    """Re-wrap every stored input's data key under the configured current key (rows stored in clear are
    encrypted), while the service runs (`rulesvc data-keys rotate`)."""
    engine = open_database(settings.database_url, keyring=settings.keyring())
    try:
        return rotate(engine)
    finally:
        engine.dispose()
