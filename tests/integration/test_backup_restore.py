"""`rulesvc backup` while events are being decided, `rulesvc restore` into a fresh database, the offline
verify against the checkpoint taken with the backup, and the restored database served; a backup of an
older release's schema is migrated by the restore. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli import backup as cli_backup
from rulesvc.apikeys import Role
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.sla.clock import SystemClock
from rulesvc.storage.backup import revision_of
from rulesvc.storage.engine import alembic_config
from tests.integration.conftest import RULESETS, _pg_admin, auth, event, make_settings, pg_url
from tests.integration.test_migration_occurred_at import upgrade

SIGNING_KEY = "11" * 32  # the service's checkpoint key, shared by the live and the restored service


@contextmanager
def new_database(kind: str, path: Path) -> Iterator[str]:
    """A database that does not exist yet (SQLite, at `path`) or an empty one (PostgreSQL, dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{path}"
        return
    name = f"rulesvc_restore_{secrets.token_hex(4)}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def kind_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    with new_database(kind_of(database_url), tmp_path / "restored" / "rulesvc.db") as url:
        yield url


def cli(args: list[str], database_url: str, checkpoint_dir: Path) -> Any:
    import typer

    app = typer.Typer()
    cli_backup.register(app)
    env = {
        "RULESVC_DATABASE_URL": database_url,
        "RULESVC_RULESETS": str(RULESETS),
        "RULESVC_CHECKPOINT_DIR": str(checkpoint_dir),
        "RULESVC_CHECKPOINT_KEY": SIGNING_KEY,
    }
    return CliRunner().invoke(app, args, env=env)


class Load:
    """Posts events from a thread until stopped; every answer must be 200."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.key = client, key
        self.posted = 0
        self.statuses: set[int] = set()
        self.stop = threading.Event()
        self.some = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            answer = self.client.post("/v1/events", json=event(f"load-{self.posted}"), headers=auth(self.key))
            self.statuses.add(answer.status_code)
            self.posted += 1
            if self.posted % 3 == 0:
                self.some.set()

    def more(self) -> None:
        """Wait until a few more events are decided."""
        self.some.clear()
        assert self.some.wait(60)


def test_backup_under_load_restores_verifies_and_serves(
    database_url: str, fresh_url: str, book: Evaluator, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    settings = make_settings(database_url, checkpoint_dir=checkpoints, checkpoint_key=SIGNING_KEY)
    target = tmp_path / "backup" / "rulesvc.bak"
    target.parent.mkdir()
    with TestClient(create_app(settings, book=book)) as client:
        store = client.app.state.runtime.service.keys  # type: ignore[attr-defined]
        key = create_api_key(store, frozenset(Role), SystemClock(), "ops")[1]
        first = client.post("/v1/events", json=event("before-backup"), headers=auth(key)).json()
        load = Load(client, key)
        load.thread.start()
        try:
            load.more()
            made = cli(["backup", str(target)], database_url, checkpoints)
            load.more()  # the live chain goes on past the copy
        finally:
            load.stop.set()
            load.thread.join(60)
        assert load.statuses == {200}, load.statuses
        live_verify = client.get("/v1/audit/verify", headers=auth(key)).json()
    assert made.exit_code == 0, made.output
    backup = json.loads(made.stdout)
    seq = backup["chain_head"]["seq"]
    assert 0 < seq < live_verify["checked"]
    assert backup["checkpoints_kept"] >= 1 and backup["checkpoint_made"]
    if database_url.startswith("sqlite"):
        assert backup["verify"] == {"ok": True, "checked": seq, "checkpoints": backup["checkpoints_kept"]}

    restored_checkpoints = tmp_path / "restored-checkpoints"
    put_back = cli(["restore", str(target)], fresh_url, restored_checkpoints)
    assert put_back.exit_code == 0, put_back.output
    report = json.loads(put_back.stdout)
    assert report["verify"]["ok"] is True and report["verify"]["checked"] == seq
    assert report["verify"]["checkpoints"] >= 1  # held against the checkpoint signed with the backup
    assert report["checkpoints_copied"] == backup["checkpoints_kept"]

    restored = make_settings(fresh_url, checkpoint_dir=restored_checkpoints, checkpoint_key=SIGNING_KEY)
    with TestClient(create_app(restored, book=book)) as client:
        assert client.get(f"/v1/decisions/{first['decision_id']}", headers=auth(key)).status_code == 200
        again = client.post("/v1/events", json=event("after-restore"), headers=auth(key))
        assert again.status_code == 200, again.text
        verified = client.get("/v1/audit/verify", headers=auth(key)).json()
        assert verified["ok"] is True and verified["checked"] > seq, verified


def test_a_backup_of_an_older_release_is_migrated_by_the_restore(
    database_url: str, fresh_url: str, book: Evaluator, tmp_path: Path
) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    older = script.get_revision(head).down_revision
    assert isinstance(older, str)
    with new_database(kind_of(database_url), tmp_path / "old" / "rulesvc.db") as old_url:
        upgrade(old_url, older)  # a database the previous release made
        checkpoints = tmp_path / "checkpoints"
        target = tmp_path / "old.bak"
        made = cli(["backup", str(target)], old_url, checkpoints)
        assert made.exit_code == 0, made.output
        backup = json.loads(made.stdout)
        assert backup["revision"] == older and "verify" not in backup  # verified once restored and migrated
        assert revision_of(old_url) == older  # a backup never migrates what it copies
    put_back = cli(["restore", str(target)], fresh_url, tmp_path / "new-checkpoints")
    assert put_back.exit_code == 0, put_back.output
    report = json.loads(put_back.stdout)
    assert report["migrated"] == {"from": older, "to": head}
    assert report["verify"]["ok"] is True
    with TestClient(create_app(make_settings(fresh_url), book=book)) as client:
        store = client.app.state.runtime.service.keys  # type: ignore[attr-defined]
        key = create_api_key(store, frozenset({Role.INGEST, Role.AUDITOR}), SystemClock(), "ops")[1]
        assert client.post("/v1/events", json=event("restored"), headers=auth(key)).status_code == 200
        assert client.get("/v1/audit/verify", headers=auth(key)).json()["ok"] is True


def test_restore_refuses_a_database_in_use(database_url: str, tmp_path: Path) -> None:
    """The live database is never overwritten: a restore goes into a new file or an empty database."""
    made = cli(["backup", str(tmp_path / "x.bak")], database_url, tmp_path / "cp")
    assert made.exit_code == 0, made.output
    again = cli(["restore", str(tmp_path / "x.bak")], database_url, tmp_path / "cp")
    assert again.exit_code == 2
    assert "backup.target_exists" in again.output or "backup.target_not_empty" in again.output


def test_a_restore_behind_newer_checkpoints_says_what_was_lost(
    database_url: str, fresh_url: str, book: Evaluator, tmp_path: Path
) -> None:
    """Checkpoints signed after the backup name entries the restored database does not have: the restore
    lists them and exits 1 (the service would refuse writes until they are moved aside)."""
    checkpoints = tmp_path / "checkpoints"
    settings = make_settings(database_url, checkpoint_dir=checkpoints, checkpoint_key=SIGNING_KEY)
    target = tmp_path / "rulesvc.bak"
    with TestClient(create_app(settings, book=book)) as client:
        store = client.app.state.runtime.service.keys  # type: ignore[attr-defined]
        key = create_api_key(store, frozenset(Role), SystemClock(), "ops")[1]
        assert cli(["backup", str(target)], database_url, checkpoints).exit_code == 0
        assert client.post("/v1/events", json=event("lost"), headers=auth(key)).status_code == 200
        later = client.post("/v1/audit/checkpoints", headers=auth(key)).json()
    put_back = cli(["restore", str(target)], fresh_url, checkpoints)
    assert put_back.exit_code == 1, put_back.output
    report = json.loads(put_back.stdout)
    assert report["verify"]["ok"] is True
    assert [name.split("-")[1] for name in report["checkpoints_ahead"]] == [f"{later['seq']:012d}"]
    assert "checkpoints_ahead" in report and "docs/operations.md" in report["message"]
