"""Backup and restore with proof (`rulesvc backup`, `rulesvc restore`).

A backup is the copy (`FILE`: an SQLite file, or a `pg_dump -Fc` file) and, beside it, `FILE.checkpoints/`:
the signed checkpoints the copy's chain extends (a fresh one is made of the live chain just before the
copy when a checkpoint directory is configured) and `backup.json`, the copy's chain head and schema
revision. A restore puts the copy into a fresh database, migrates it to this release's schema, and
verifies it offline against those checkpoints: the restored chain must extend the last checkpoint taken
before the backup, and its head must be the one the backup recorded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rulesvc.audit.chain import Problem, VerifyResult
from rulesvc.audit.checkpoints import CheckpointDirectory, CheckpointError, trusted_keys
from rulesvc.settings import Settings
from rulesvc.storage import SqlStore, make_engine
from rulesvc.storage.backup import (
    BackupError,
    Copied,
    backend,
    copy_sqlite,
    dump_postgres,
    head_revision,
    restore_postgres,
    restore_sqlite,
    revision_of,
    sqlite_path,
)
from rulesvc.wiring.database import open_database, verify_database
from rulesvc.wiring.services import checkpoint_keeper

__all__ = ["BackupError", "BackupResult", "RestoreResult", "bundle_of", "restore_backup", "take_backup"]

MANIFEST = "backup.json"


def bundle_of(file: Path) -> Path:
    """The directory of checkpoints kept beside a backup file."""
    return file.with_name(file.name + ".checkpoints")


@dataclass(frozen=True)
class BackupResult:
    file: Path
    backend: str
    copied: Copied
    bundled: int
    checkpoint: str | None
    """The checkpoint made of the live chain just before the copy (its file name), if any."""
    notes: tuple[str, ...] = ()
    verify: VerifyResult | None = None
    """The copy verified offline against its checkpoints (SQLite; a dump is verified by `restore`)."""

    @property
    def ok(self) -> bool:
        return self.verify is None or self.verify.ok

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "backup": str(self.file),
            "database": self.backend,
            "chain_head": {"seq": self.copied.seq, "hash": self.copied.head_hash},
            "revision": self.copied.revision,
            "checkpoints": str(bundle_of(self.file)),
            "checkpoints_kept": self.bundled,
        }
        if self.checkpoint:
            result["checkpoint_made"] = self.checkpoint
        if self.notes:
            result["notes"] = list(self.notes)
        if self.verify is not None:
            result["verify"] = self.verify.to_json()
        return result


def take_backup(
    settings: Settings, target: Path, *, pg_dump: str | None = None, checkpoint: bool = True
) -> BackupResult:
    """Copy the configured database into `target` while the service runs (nothing in it is changed, no
    migration), keep the checkpoints the copy extends beside it, and verify an SQLite copy at once."""
    url = settings.database_url
    kind = backend(url)
    notes: list[str] = []
    made = _checkpoint_now(settings, notes) if checkpoint else None
    if kind == "sqlite":
        copied = copy_sqlite(sqlite_path(url), target)
    elif kind == "postgresql":
        copied = dump_postgres(url, target, pg_dump)
    else:
        raise BackupError("backup.unsupported", f"不支持备份 {kind} 数据库")
    bundle = bundle_of(target)
    kept = _keep_checkpoints(settings.checkpoint_directory(), bundle, copied.seq)
    manifest = {
        "file": target.name,
        "database": kind,
        "seq": copied.seq,
        "head_hash": copied.head_hash,
        "revision": copied.revision,
        "taken_at": datetime.now(UTC).isoformat(),
    }
    (bundle / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    if settings.checkpoint_directory() is None:
        notes.append("未配置检查点目录（RULESVC_CHECKPOINT_DIR）：备份只能校验日志链自身，无法对照签名检查点")
    verified = None
    if copied.revision != head_revision():
        notes.append(
            f"数据库结构版本 {copied.revision} 不是本版本的 {head_revision()}：恢复（迁移）之后再校验这份备份"
        )
    elif kind == "sqlite":
        copy = settings.model_copy(update={"database_url": f"sqlite:///{target.resolve()}"})
        lock = target.with_name(target.name + "-writelock")
        existed = lock.exists()
        verified = verify_database(copy, [bundle], _trusted(settings))
        if not existed:
            lock.unlink(missing_ok=True)  # left by opening the copy; nothing holds it
    return BackupResult(target, kind, copied, kept, made, tuple(notes), verified)


def _checkpoint_now(settings: Settings, notes: list[str]) -> str | None:
    """Sign the live chain's head now (as `POST /v1/audit/checkpoints` does), so that the copy extends a
    checkpoint at most one backup old."""
    if settings.checkpoint_directory() is None:
        return None
    engine = make_engine(settings.database_url, **settings.engine_options())
    try:
        keeper = checkpoint_keeper(settings, SqlStore(engine, group_commit=False))
        if keeper is None:
            return None
        made = keeper.make()
    except CheckpointError as exc:
        notes.append(f"备份前未能签署检查点（{exc.code}）：{exc}")
        return None
    finally:
        engine.dispose()
    latest = CheckpointDirectory(settings.checkpoint_directory() or Path()).read()
    names = [name for name, cp in latest if cp is not None and cp.signature == made.signature]
    return names[-1] if names else None


def _keep_checkpoints(directory: Path | None, bundle: Path, seq: int) -> int:
    """Copy the checkpoints of `directory` the copy's chain reaches (seq ≤ its head) into `bundle`."""
    bundle.mkdir(parents=True, exist_ok=True)
    if directory is None:
        return 0
    kept = 0
    for name, checkpoint in CheckpointDirectory(directory).read():
        if checkpoint is not None and checkpoint.seq <= seq:
            shutil.copy2(directory / name, bundle / name)
            kept += 1
    return kept


def _trusted(settings: Settings) -> list[str]:
    return trusted_keys(settings, settings.checkpoint_directory())


@dataclass(frozen=True)
class RestoreResult:
    source: Path
    backend: str
    revision_before: str | None
    revision_after: str | None
    verify: VerifyResult
    restored_checkpoints: int = 0
    ahead: tuple[str, ...] = field(default_factory=tuple)
    """Checkpoints of the configured directory past the restored chain's head."""

    @property
    def ok(self) -> bool:
        return self.verify.ok and not self.ahead

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "restored": str(self.source),
            "database": self.backend,
            "migrated": {"from": self.revision_before, "to": self.revision_after},
            "checkpoints_copied": self.restored_checkpoints,
            "verify": self.verify.to_json(),
        }
        if self.ahead:
            result["checkpoints_ahead"] = list(self.ahead)
            result["message"] = (
                f"检查点目录中有 {len(self.ahead)} 个检查点晚于这份备份：备份之后的日志不在恢复的数据库里，"
                "服务会拒绝写入（audit.chain_rolled_back）。确认接受这段丢失后，把这些文件移出检查点目录"
                "（docs/operations.md「恢复之后」）"
            )
        return result


def restore_backup(
    settings: Settings,
    source: Path,
    checkpoints: Sequence[Path] = (),
    *,
    pg_restore: str | None = None,
) -> RestoreResult:
    """Put the backup `source` into the configured (fresh) database, migrate it to this release's schema,
    copy its checkpoints into the configured checkpoint directory, and verify it offline against
    `checkpoints` (default: the ones kept beside the backup)."""
    url = settings.database_url
    kind = backend(url)
    if kind == "sqlite":
        restore_sqlite(source, sqlite_path(url))
    elif kind == "postgresql":
        restore_postgres(source, url, pg_restore)
    else:
        raise BackupError("backup.unsupported", f"不支持恢复到 {kind} 数据库")
    before = revision_of(url)
    open_database(url).dispose()  # migrate: a backup of an older release
    after = revision_of(url)
    bundle = bundle_of(source)
    folders = list(checkpoints) or ([bundle] if bundle.is_dir() else [])
    copied = _copy_into(folders, settings.checkpoint_directory())
    head = _head(url)
    result = verify_database(settings, folders, _trusted(settings))
    result = result.with_problems(_manifest_problems(bundle, head))
    ahead = _ahead(settings.checkpoint_directory(), head[0])
    return RestoreResult(source, kind, before, after, result, copied, ahead)


def _copy_into(folders: Sequence[Path], directory: Path | None) -> int:
    """The backup's checkpoints go into the restored service's checkpoint directory (kept: the chain keeps
    extending them)."""
    if directory is None:
        return 0
    copied = 0
    for folder in folders:
        for name, checkpoint in CheckpointDirectory(folder).read():
            if checkpoint is not None and not (directory / name).exists():
                directory.mkdir(parents=True, exist_ok=True)
                shutil.copy2(folder / name, directory / name)
                copied += 1
    return copied


def _head(url: str) -> tuple[int, str]:
    engine = make_engine(url)
    try:
        return SqlStore(engine, group_commit=False).chain_head()
    finally:
        engine.dispose()


def _manifest_problems(bundle: Path, head: tuple[int, str]) -> list[Problem]:
    """The restored head must be the one the backup recorded."""
    try:
        manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    seq, head_hash = head
    if (seq, head_hash) == (manifest.get("seq"), manifest.get("head_hash")):
        return []
    return [
        Problem(
            "audit_head",
            "1",
            "backup_head_mismatch",
            f"恢复后的日志链头（第 {seq} 条）与备份时记录的（第 {manifest.get('seq')} 条）不一致",
        )
    ]


def _ahead(directory: Path | None, head: int) -> tuple[str, ...]:
    if directory is None:
        return ()
    return tuple(
        name for name, cp in CheckpointDirectory(directory).read() if cp is not None and cp.seq > head
    )
