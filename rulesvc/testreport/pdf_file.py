"""The evidence file as PDF: the HTML page (`html_file`) printed by WeasyPrint on Pango, its fonts (Noto Sans
CJK from fonts-noto-cjk) embedded, the content attached as `rulesvc-evidence.json` so the digest can be
checked. Nothing is fetched: the page has no external asset and any URL it names is refused."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from rulesvc.errors import RulesvcError
from rulesvc.testreport.document import Evidence
from rulesvc.testreport.html_file import render_html

ATTACHMENT = "rulesvc-evidence.json"


class PdfUnavailableError(RulesvcError):
    """The PDF cannot be made on this machine (WeasyPrint or Pango missing)."""

    code = "report.pdf_unavailable"


def _refuse(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError(f"evidence files fetch nothing: {url}")


def render_pdf(evidence: Evidence) -> bytes:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: WeasyPrint is there but Pango is not
        raise PdfUnavailableError(
            f"本机无法生成 PDF（需要 WeasyPrint 与 Pango：make pdf-deps）：{exc}"
        ) from exc
    text = json.dumps(evidence.content, ensure_ascii=False, sort_keys=True)
    attachment = weasyprint.Attachment(
        string=text.encode("utf-8"), name=ATTACHMENT, description="报告内容（JSON）"
    )
    pdf: bytes = weasyprint.HTML(string=render_html(evidence), url_fetcher=_refuse).write_pdf(
        attachments=[attachment]
    )
    return pdf
