"""Spreadsheets on the lifecycle: a decision table or the compliance cases of a version (the one in force by
default) or of a draft as an XLSX/CSV file, and an edited sheet back into a draft (its table replaced, or its
case file), checked and tested as any change of a draft. Nothing here publishes: a sheet changes a draft,
which is then submitted, approved and published as every draft is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rulesvc.errors import RulesetError
from rulesvc.lang.model import Ruleset
from rulesvc.lifecycle.errors import InvalidSheetError, NotFoundError
from rulesvc.lifecycle.ports import DraftRecord
from rulesvc.lifecycle.service import LifecycleService
from rulesvc.lifecycle.timeline import in_force
from rulesvc.sheets import (
    export_cases_csv,
    export_cases_xlsx,
    export_table_csv,
    export_table_xlsx,
    import_cases,
    import_table,
)

SheetFormat = Literal["xlsx", "csv"]


@dataclass(frozen=True)
class SheetFile:
    data: bytes
    file_name: str
    """What the download is called: `<ruleset>-<table>-v3.xlsx`, `<ruleset>-样例-草稿.csv`."""


@dataclass(frozen=True)
class _Source:
    """What a sheet is made from: a version's or a draft's ruleset file and own case file."""

    label: str
    content: str
    cases: str
    version: int


class DraftSheets:
    """The spreadsheet use cases over one artifact's lifecycle service (rulesets)."""

    def __init__(self, service: LifecycleService) -> None:
        self.service = service
        self.queries = service.queries
        self.factory = service.factory

    # -- downloads ----------------------------------------------------------------------------------------

    def _source(self, name: str, draft_id: str | None, version: int | None) -> _Source:
        if draft_id is not None:
            draft = self.queries.draft(name, draft_id)
            return _Source("草稿", draft.content, self.draft_cases(draft), 0)
        if version is not None:
            record = self.queries.version(name, version)
        else:
            self.queries.versions(name)  # 404 for a ruleset that does not exist
            current = in_force(self.service.store.all_versions(), self.service.clock.now()).get(name)
            if current is None:
                raise NotFoundError(f"规则集 {name} 还没有生效的版本", {"ruleset": name})
            record = current
        cases = record.cases.get(name, self.service.shipped_cases.get(name, ""))
        return _Source(f"v{record.version}", record.content, str(cases), record.version)

    def draft_cases(self, draft: DraftRecord) -> str:
        """The draft's own case file: uploaded with the draft, else the one of its base version."""
        if draft.name in draft.cases:
            return draft.cases[draft.name]
        if draft.base_version is not None:
            base = self.queries.version(draft.name, draft.base_version)
            return str(base.cases.get(draft.name, self.service.shipped_cases.get(draft.name, "")))
        return self.service.shipped_cases.get(draft.name, "")

    def _ruleset(self, name: str, content: str, version: int = 0) -> Ruleset:
        return (
            self.factory.ruleset(name, content, version) if version else self.factory.ruleset(name, content)
        )

    def table_sheet(
        self,
        name: str,
        table_id: str,
        fmt: SheetFormat,
        *,
        draft_id: str | None = None,
        version: int | None = None,
    ) -> SheetFile:
        source = self._source(name, draft_id, version)
        ruleset = self._ruleset(name, source.content, source.version)
        _require_table(ruleset, table_id)
        if fmt == "csv":
            data = export_table_csv(ruleset, table_id)
        else:
            data = export_table_xlsx(ruleset, table_id, self.factory.kinds[ruleset.kind])
        return SheetFile(data, f"{name}-{table_id}-{source.label}.{fmt}")

    def cases_sheet(
        self, name: str, fmt: SheetFormat, *, draft_id: str | None = None, version: int | None = None
    ) -> SheetFile:
        source = self._source(name, draft_id, version)
        ruleset = self._ruleset(name, source.content, source.version)
        kind = self.factory.kinds[ruleset.kind]
        export = export_cases_csv if fmt == "csv" else export_cases_xlsx
        data = export(f"cases/{name}.yaml", source.cases or "cases: []\n", name, kind)
        return SheetFile(data, f"{name}-样例-{source.label}.{fmt}")

    # -- uploads ------------------------------------------------------------------------------------------

    def _table_text(self, name: str, content: str, table_id: str, file_name: str, data: bytes) -> str:
        ruleset = self._ruleset(name, content)
        _require_table(ruleset, table_id)
        text, errors = import_table(
            file_name, data, ruleset, self.factory.kinds, self.factory.calendars, table_id=table_id
        )
        if text is None:
            raise _sheet_error(errors, f"规则表 {table_id} 的表格有错误")
        return text

    def put_table(
        self, actor: str, name: str, draft_id: str, table_id: str, file_name: str, data: bytes
    ) -> DraftRecord:
        """The draft with one table's rows, default row, hit policy and aggregation taken from the sheet."""
        draft = self.queries.draft(name, draft_id)
        text = self._table_text(name, draft.content, table_id, file_name, data)
        return self.service.update_content(
            actor, name, draft_id, text, based_on=draft.content, step="table_uploaded", table=table_id
        )

    def new_table_draft(
        self, actor: str, name: str, table_id: str, file_name: str, data: bytes, reason: str
    ) -> DraftRecord:
        """A new draft of the latest version with one table taken from the sheet."""
        head = self.queries.versions(name)[-1]
        text = self._table_text(name, head.content, table_id, file_name, data)
        return self.service.create_draft(
            actor, name, text, reason or f"从表格导入规则表 {table_id}", base_version=head.version
        )

    def _cases_text(self, name: str, content: str, old: str, file_name: str, data: bytes) -> str:
        """The ruleset's case file made from the sheet; cases that did not change keep their text of `old`."""
        ruleset = self._ruleset(name, content)
        text, errors = import_cases(
            file_name,
            data,
            name,
            self.factory.kinds[ruleset.kind],
            self.factory.kinds,
            case_file=f"cases/{name}.yaml",
            old_text=old,
        )
        if text is None:
            raise _sheet_error(errors, "合规样例表格有错误")
        return text

    def put_cases(self, actor: str, name: str, draft_id: str, file_name: str, data: bytes) -> DraftRecord:
        """The draft's own case file made from the sheet (unchanged cases keep their text) and re-tested."""
        draft = self.queries.draft(name, draft_id)
        text = self._cases_text(name, draft.content, self.draft_cases(draft), file_name, data)
        return self.service.upload_cases(actor, name, draft_id, name, text)

    def new_cases_draft(self, actor: str, name: str, file_name: str, data: bytes, reason: str) -> DraftRecord:
        """A new draft of the latest version (its rules unchanged) with its case file made from the sheet."""
        head = self.queries.versions(name)[-1]
        old = str(head.cases.get(name, self.service.shipped_cases.get(name, "")))
        text = self._cases_text(name, head.content, old, file_name, data)
        return self.service.create_draft(
            actor, name, head.content, reason or "从表格导入合规样例", {name: text}, base_version=head.version
        )


def _require_table(ruleset: Ruleset, table_id: str) -> None:
    ids = [t.id for t in ruleset.tables]
    if table_id not in ids:
        raise NotFoundError(
            f"规则集 {ruleset.name} 没有规则表「{table_id}」", {"table": table_id, "tables": ids}
        )


def _sheet_error(errors: list[RulesetError], message: str) -> InvalidSheetError:
    return InvalidSheetError(errors, message)
