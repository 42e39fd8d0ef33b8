"""The report's chart: the weekly churn rate of the last 12 weeks and a cohort retention heatmap.

Drawn on matplotlib's Agg canvas directly (no pyplot, no display, no global backend
state), so it is safe in worker threads; matplotlib is imported only when a chart is
drawn. Missing data gives an annotated empty panel, never an error.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from churn.report.figures import ReportData
from churn.report.formatting import format_month, format_percent, format_short_date
from churn.report.labels import labels_for

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# How many cohorts (most recent first) and months the heatmap shows; more is unreadable.
MAX_HEATMAP_COHORTS: Final = 12
MAX_HEATMAP_MONTHS: Final = 12


def _percent_formatter(locale: str, decimals: int) -> Callable[[float, object], str]:
    def formatter(value: float, _position: object) -> str:
        return format_percent(value, locale, decimals)

    return formatter


def render_chart(data: ReportData) -> bytes:
    """A PNG with the weekly churn rate of the last 12 weeks and a cohort retention heatmap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 9), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    churn_axes, cohort_axes = figure.subplots(2, 1, height_ratios=[1, 1.3])
    _draw_churn_rates(churn_axes, data)
    _draw_cohort_heatmap(figure, cohort_axes, data)
    buffer = io.BytesIO()
    # No "Software" metadata: the same data gives the same bytes across matplotlib builds.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _no_data(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _draw_churn_rates(axes: Axes, data: ReportData) -> None:
    """Bars of the weekly churn rate; a week without active customers has no bar."""
    from matplotlib.ticker import FuncFormatter

    loc = data.locale
    lab = labels_for(loc)
    history = data.churn_history[-12:]
    axes.set_title(lab["chart_churn_title"])
    axes.set_xlabel(lab["chart_churn_x"])
    axes.set_ylabel(lab["chart_churn_y"])
    axes.yaxis.set_major_formatter(FuncFormatter(_percent_formatter(loc, 1)))
    axes.grid(axis="y", alpha=0.3)
    rates = [rate if rate is not None and math.isfinite(rate) else None for _, rate in history]
    known = [rate for rate in rates if rate is not None]
    if not known:
        _no_data(axes, lab["no_data"])
        return
    positions = list(range(len(history)))
    bars = axes.bar(positions, [rate or 0.0 for rate in rates], color="#d1495b", width=0.7)
    axes.set_xticks(
        positions,
        [format_short_date(week_end - timedelta(days=1), loc) for week_end, _ in history],
        rotation=45,
        ha="right",
    )
    axes.set_ylim(0, (max(known) or 0.01) * 1.25)
    for bar, rate in zip(bars, rates, strict=True):
        axes.annotate(
            lab["not_available"] if rate is None else format_percent(rate, loc),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
            xytext=(0, 2),
            textcoords="offset points",
        )


def _draw_cohort_heatmap(figure: Figure, axes: Axes, data: ReportData) -> None:
    """Retention of the most recent cohorts, by months since their first order."""
    import numpy as np
    from matplotlib.ticker import FuncFormatter

    loc = data.locale
    lab = labels_for(loc)
    axes.set_title(lab["chart_cohort_title"])
    axes.set_xlabel(lab["chart_cohort_x"])
    axes.set_ylabel(lab["chart_cohort_y"])
    valid = [
        (month, age, rate)
        for month, age, rate in data.cohorts
        if 0 <= age <= MAX_HEATMAP_MONTHS and rate is not None and math.isfinite(rate)
    ]
    months = sorted({month for month, _, _ in valid})[-MAX_HEATMAP_COHORTS:]
    if not months:
        _no_data(axes, lab["no_data"])
        return
    ages = max(age for month, age, _ in valid if month in months) + 1
    grid = np.full((len(months), ages), np.nan)
    row_of = {month: row for row, month in enumerate(months)}
    for month, age, rate in valid:
        if month in row_of:
            grid[row_of[month], age] = rate
    image = axes.imshow(grid, cmap="YlGnBu", vmin=0, vmax=1, aspect="auto")
    axes.set_xticks(range(ages), [str(age) for age in range(ages)])
    axes.set_yticks(range(len(months)), [format_month(month, loc) for month in months])
    for (row, column), rate in np.ndenumerate(grid):
        if not np.isnan(rate):
            axes.text(
                column,
                row,
                format_percent(float(rate), loc, 0),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if rate > 0.6 else "black",
            )
    colorbar = figure.colorbar(image, ax=axes, label=lab["chart_retention"])
    colorbar.ax.yaxis.set_major_formatter(FuncFormatter(_percent_formatter(loc, 0)))
