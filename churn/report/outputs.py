"""The rendered report: Telegram's parts, the chart's caption and PNG, and the dry run's files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from churn.report.chart import render_chart
from churn.report.figures import ReportData
from churn.report.telegram_html import html_to_plain_text, split_message, truncate_caption
from churn.report.text import render_caption, render_report
from churn.settings.paths import reports_dir


@dataclass(frozen=True)
class RenderedReport:
    """What is sent: the text in parts within Telegram's limit, the chart and its caption."""

    text_parts: list[str]
    caption: str
    chart_png: bytes

    @property
    def full_text(self) -> str:
        return "\n".join(self.text_parts)


def render(data: ReportData) -> RenderedReport:
    """Render the report's text, caption and chart from its figures."""
    return RenderedReport(
        text_parts=split_message(render_report(data)),
        caption=truncate_caption(render_caption(data)),
        chart_png=render_chart(data),
    )


def write_dry_run(report: RenderedReport, as_of: dt.date) -> Path:
    """Write the report (HTML as sent, plain text, chart) under reports/<as-of>/."""
    directory = reports_dir() / as_of.isoformat()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.html").write_text(report.full_text + "\n", encoding="utf-8")
    (directory / "report.txt").write_text(
        html_to_plain_text(report.full_text) + "\n", encoding="utf-8"
    )
    (directory / "chart.png").write_bytes(report.chart_png)
    return directory
