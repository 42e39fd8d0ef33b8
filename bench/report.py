"""The benchmarks' output: markdown tables, the targets table, a results file kept current.

A target's verdict is computed from the measured figure by `verdict` alone: met or not
met, and by how much (the distance to the goal as a share of the goal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table, numeric columns right-aligned."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    numeric = []
    for i in range(len(headers)):
        figures = [row[i] for row in cells if row[i] not in ("-", "")]
        numeric.append(bool(figures) and all(_looks_numeric(value) for value in figures))

    def line(values: Sequence[str]) -> str:
        padded = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        ("-" * (width - 1) + ":") if right else "-" * width
        for width, right in zip(widths, numeric, strict=True)
    ]
    return "\n".join([line(list(headers)), line(rule), *(line(row) for row in cells)])


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("x", "").replace("~", "").strip()
    try:
        float(stripped.split()[0])
    except (ValueError, IndexError):
        return False
    return True


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def secs(value: float | None) -> str:
    """Seconds with one decimal, or '-' when there is no figure."""
    return "-" if value is None else f"{value:,.1f}"


def approx(count: int) -> str:
    """~95k, ~1.02M: a count the way the tables name a size."""
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if count >= size:
            return f"~{count / size:.3g}{unit}"
    return f"~{count}"


# -- targets ----------------------------------------------------------------------------------


def meets(measured: float, goal: float, *, at_least: bool) -> bool:
    return measured >= goal if at_least else measured <= goal


def verdict(measured: float, goal: float, *, at_least: bool) -> str:
    """'met by 12%' or 'not met by 35%': the distance to the goal as a share of the goal."""
    met = meets(measured, goal, at_least=at_least)
    margin = abs(measured - goal) / goal
    amount = f"{margin:.1%}" if margin < 0.1 else f"{margin:.0%}"
    return f"{'met' if met else 'not met'} by {amount}"


@dataclass(frozen=True)
class Target:
    """One line of the targets table: what is asked, what was measured, the verdict.

    `measured` None leaves the verdict to `missing` (why there is no figure to judge).
    `detail` follows the verdict (e.g. what ours would have needed), computed by the caller.
    """

    what: str
    goal: float
    at_least: bool
    measured: float | None
    shown: str = ""
    missing: str = "not measured"
    detail: str = ""

    @property
    def met(self) -> bool:
        """The verdict's met or not met; a target without a figure is not met."""
        return self.measured is not None and meets(self.measured, self.goal, at_least=self.at_least)

    def row(self) -> list[str]:
        if self.measured is None:
            return [self.what, self.shown or "-", self.missing]
        judged = verdict(self.measured, self.goal, at_least=self.at_least)
        return [self.what, self.shown, f"{judged}{f' ({self.detail})' if self.detail else ''}"]


def targets_table(targets: Sequence[Target]) -> str:
    return markdown_table(["target", "measured", "verdict"], [target.row() for target in targets])


def ratio_target(
    what: str, goal: float, ours: float | None, naive: float | None, missing: str = ""
) -> Target:
    """naive / ours >= goal; the detail says the time ours would have needed, if missed."""
    if ours is None or naive is None:
        return Target(what, goal, True, None, missing=missing or "not measured")
    ratio = naive / ours
    needed = f"ours took {ours:.1f} s; {goal:g}x needs <= {naive / goal:.1f} s"
    detail = "" if ratio >= goal else needed
    return Target(what, goal, True, ratio, f"{ratio:.1f}x", detail=detail)


# -- the results file -----------------------------------------------------------------------------


@dataclass
class Report:
    """The markdown written so far, rewritten to `output` after every addition."""

    output: Path
    lines: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        """Append lines, print them, and rewrite the output file."""
        self.lines.extend(lines)
        for line in lines:
            print(line, flush=True)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text("\n".join(self.lines) + "\n")

    def add_targets(self, *targets: Target) -> None:
        self.targets.extend(targets)

    def finish(self, minutes: float) -> None:
        """The targets table (if any), then how long the whole benchmark took."""
        if self.targets:
            self.add("## Targets", "", targets_table(self.targets), "")
        self.add(f"Whole benchmark: {minutes:.1f} minutes.")
