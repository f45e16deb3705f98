"""Reading evidence files in tests: the HTML's tables as text rows (html.parser), the PDF's text (poppler's
`pdftotext`), and the PDF tools being there. `make pdf-deps` (run by `make test`) installs Pango, Noto Sans
CJK and poppler-utils; under CI=true a missing one fails the PDF tests, elsewhere they skip with the reason."""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rulesvc.testreport.verify import pdf_text

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_pdf_tools() -> None:
    missing = [tool for tool in ("pdftotext", "pdfdetach", "pdffonts") if shutil.which(tool) is None]
    try:
        import weasyprint  # noqa: F401  (loads Pango)
    except (ImportError, OSError) as exc:
        missing.append(f"WeasyPrint/Pango ({exc})")
    if missing:
        message = f"PDF evidence needs {', '.join(missing)}: make pdf-deps"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: the PDF tools are required)")
        pytest.skip(message)


def read_pdf(path: Path) -> str:
    return pdf_text(path)


class Tables(HTMLParser):
    """Every table of a page as rows of cell texts (whitespace collapsed), and the page's headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.headings: list[str] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")
        elif tag == "script":
            self._script = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None
        elif tag == "script":
            self._script = False

    def handle_data(self, data: str) -> None:
        if self._script:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)


def parse_html(text: str) -> Tables:
    page = Tables()
    page.feed(text)
    return page


def table_with(page: Tables, header: str) -> list[list[str]]:
    """The rows (header row first) of the first table with a header cell `header`."""
    return next(t for t in page.tables if t and header in t[0])
