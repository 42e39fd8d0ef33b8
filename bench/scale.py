"""The scale curve: ~100k, 1M and 10M orders, the full build and the weekly run after it.

At each point (10k, 100k, 1M customers over 365 days of history, 500 products), each
step in a fresh process on a throwaway database:
- generate + land: `write_and_land_activity` on an empty database (raw rows per second);
- the full dbt build: what the dbt subflow runs, without Prefect tasks (the build_steps
  of churn.build.commands through run_dbt: the raw checks, then `dbt build
  --full-refresh`), with dbt's own node timings;
- the weekly run: the next week landed by the generation code, then the same dbt
  commands for as-of + 7 days, incrementally, with the checks window the subflow sets.

Prints markdown and writes bench/results/scale.md.

    uv run python bench/scale.py                    # ~100k and ~1M orders
    uv run python bench/scale.py --full             # up to ~10M orders
    uv run python bench/scale.py --max-orders 100k
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    AS_OF,
    DBT_PROJECT,
    RAW_TABLES,
    RESULTS_DIR,
    WINDOW,
    Session,
    StepSkipped,
    add_budget_arguments,
    bench_database,
    bench_warehouse,
    copy_dbt_project,
    load_average,
    run_benchmark,
    run_child,
    run_env,
    serve_child,
    shop_plan,
)
from bench.report import Report, Target, markdown_table, mib, secs

SCRIPT = Path(__file__).resolve()
# Label of the scale point -> customers signing up over 365 days (about 10 orders each).
SCALE_POINTS = {"100k": 10_000, "1M": 100_000, "10M": 1_000_000}
FULL_PIPELINE_LIMIT_S = 15 * 60
WEEKLY_SHARE_LIMIT = 0.10
PEAK_RSS_LIMIT = 1024**3


def child_land(options: Mapping[str, Any]) -> dict[str, Any]:
    """Plan and land what the generation flow would for `as_of` (history or next week)."""
    from churn.simulation.landing import write_and_land_activity
    from churn.simulation.state import read_landed_state
    from churn.warehouse.raw import landing_transaction

    warehouse = bench_warehouse(str(options["database"]))
    with landing_transaction(warehouse) as conn:
        state = read_landed_state(conn)
    as_of = dt.date.fromisoformat(str(options["as_of"]))
    plan = shop_plan(int(options["customers"]), state=state, as_of=as_of)
    directory = Path(str(options["directory"]))
    started = time.perf_counter()
    try:
        _, landed = write_and_land_activity(warehouse, plan, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "seconds": time.perf_counter() - started,
        "rows": sum(landed[table] for table in RAW_TABLES),
        "orders": landed["orders"],
    }


def child_dbt(options: Mapping[str, Any]) -> dict[str, Any]:
    """The subflow's dbt commands run plainly (raw checks, then the build), node times.

    A full build runs with --full-refresh; an incremental one gets the checks window the
    subflow would give it after a build for `last_as_of`.
    """
    from churn.build.commands import LastBuild, build_steps, checks_window_start
    from churn.build.invocation import run_dbt

    warehouse = bench_warehouse(str(options["database"]))
    as_of = dt.date.fromisoformat(str(options["as_of"]))
    full_refresh = bool(options["full_refresh"])
    last_as_of = options.get("last_as_of")
    checks_from = (
        None
        if full_refresh or last_as_of is None
        else checks_window_start(LastBuild(WINDOW, dt.date.fromisoformat(last_as_of)), as_of)
    )
    steps = build_steps(as_of, WINDOW, full_refresh=full_refresh, checks_from=checks_from)
    project = Path(str(options["project"]))
    started = time.perf_counter()
    rows = [row.as_row() for step in steps for row in run_dbt(warehouse, step.args, project)]
    models = [(row["node"], row["seconds"]) for row in rows if row["type"] == "model"]
    tests = [(row["node"].split(".")[2], row["seconds"]) for row in rows if row["type"] == "test"]
    return {
        "seconds": time.perf_counter() - started,
        "nodes": len(rows),
        "models": sorted(models, key=lambda item: -item[1])[:5],
        "test_seconds": sum(seconds for _, seconds in tests),
        "tests": sorted(tests, key=lambda item: -item[1])[:3],
    }


CHILDREN = {"land": child_land, "dbt": child_dbt}


@dataclass
class ScalePoint:
    """One point of the curve: each step's child result, by name."""

    label: str
    customers: int
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: str = ""

    def seconds(self, *names: str) -> float | None:
        if not all(name in self.steps for name in names):
            return None
        return sum(float(self.steps[name]["seconds"]) for name in names)

    def peak_rss(self) -> int | None:
        return max((int(step["peak_rss"]) for step in self.steps.values()), default=None)


def measure_point(session: Session, point: ScalePoint, project: Path) -> ScalePoint:
    """Land the history and build it fully; then land and build the next week."""
    env = run_env(session.work / "prefect_home")
    landing = str(session.work / "landing")
    next_week = (AS_OF + dt.timedelta(days=7)).isoformat()
    with bench_database(f"scale_{point.label.lower()}") as warehouse:
        base = {"database": warehouse.database, "customers": point.customers}
        dbt = {"database": warehouse.database, "project": str(project)}
        steps: list[tuple[str, str, dict[str, Any]]] = [
            ("land", "land", {**base, "as_of": AS_OF.isoformat(), "directory": landing}),
            ("full", "dbt", {**dbt, "as_of": AS_OF.isoformat(), "full_refresh": True}),
            ("week land", "land", {**base, "as_of": next_week, "directory": landing}),
            (
                "week dbt",
                "dbt",
                {**dbt, "as_of": next_week, "full_refresh": False, "last_as_of": AS_OF.isoformat()},
            ),
        ]
        for name, child, options in steps:
            try:
                point.steps[name] = run_child(SCRIPT, child, options, session.budget, env)
            except StepSkipped as skipped:
                point.missing = f"{name}: {skipped}"
                break
            print(
                f"scale {point.label}: {name} in {point.steps[name]['seconds']:.1f} s", flush=True
            )
    return point


def _timings(named: list[list[Any]]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in named)


def _share(part: float | None, whole: float | None) -> str:
    return "-" if part is None or not whole else f"{part / whole:.0%}"


def report_scale(report: Report, points: list[ScalePoint], not_run: list[str]) -> None:
    rows = []
    for point in points:
        land = point.steps.get("land")
        week_land = point.steps.get("week land")
        full_total = point.seconds("land", "full")
        week_total = point.seconds("week land", "week dbt")
        rows.append(
            [
                f"{land['orders']:,}" if land else "-",
                f"{point.customers:,}",
                f"{land['rows']:,}" if land else "-",
                secs(point.seconds("land")),
                f"{land['rows'] / land['seconds']:,.0f}" if land else "-",
                secs(point.seconds("full")),
                secs(full_total),
                f"{week_land['rows']:,}" if week_land else "-",
                secs(point.seconds("week land")),
                secs(point.seconds("week dbt")),
                _share(week_total, full_total),
                _share(point.seconds("week dbt"), point.seconds("full")),
                mib(rss) if (rss := point.peak_rss()) else "-",
                point.missing,
            ]
        )
    headers = ["orders", "customers", "raw rows", "land s", "rows/s", "full dbt s", "full s"]
    headers += ["week rows", "week land s", "week dbt s", "week / full", "week dbt / full dbt"]
    slowest = [
        [
            f"{point.label} {'full' if step == 'full' else 'weekly'}",
            _timings(point.steps[step]["models"]),
            secs(point.steps[step]["test_seconds"]),
            _timings(point.steps[step]["tests"]),
        ]
        for step in ("full", "week dbt")
        for point in points
        if step in point.steps
    ]
    report.add(
        "## Scale: 365 days of history, 500 products, then one more week",
        "",
        markdown_table([*headers, "peak RSS", "note"], rows),
        "",
        "- land: simulate, write CSV and COPY into `raw` in one transaction on an empty "
        "database; rows/s counts the rows landed in the five raw tables.",
        "- full dbt: the raw checks, then `dbt build --full-refresh` (2 threads) on a copy "
        "of dbt/; full = land + full dbt. week: the next week landed, then the same commands "
        "without --full-refresh; `week / full` compares land + dbt of the week with land + "
        "dbt of the history.",
        "- peak RSS: the largest of the steps' processes (PostgreSQL not counted).",
        *(f"- {line}" for line in not_run),
        f"- load average (1, 5, 15 min) after the curve: {load_average()}",
        "",
        "### Slowest dbt models and tests (dbt's node timings, seconds): full, then weekly",
        "",
        markdown_table(["run", "5 slowest models", "all tests s", "3 slowest tests"], slowest),
        "",
    )


def targets(points: list[ScalePoint]) -> list[Target]:
    largest = next((point for point in points if point.label == "10M"), None)
    full = largest.seconds("land", "full") if largest else None
    week = largest.seconds("week land", "week dbt") if largest else None
    share = week / full if week is not None and full else None
    peaks = [rss for point in points if (rss := point.peak_rss())]
    missing = "not measured (--full)" if largest is None else "not measured"
    return [
        Target(
            "~10M orders: full pipeline (land + dbt) <= 15 min",
            FULL_PIPELINE_LIMIT_S / 60,
            False,
            full / 60 if full else None,
            f"{full / 60:.1f} min" if full else "",
            missing,
        ),
        Target(
            "~10M orders: weekly run <= 10% of the full one",
            WEEKLY_SHARE_LIMIT,
            False,
            share,
            f"{share:.0%}" if share is not None else "",
            missing,
        ),
        Target(
            "peak RSS of the scale curve's steps <= 1 GiB",
            PEAK_RSS_LIMIT,
            False,
            max(peaks) if peaks else None,
            mib(max(peaks)) if peaks else "",
        ),
    ]


def run(session: Session, report: Report, max_orders: str) -> None:
    labels = list(SCALE_POINTS)
    chosen = labels[: labels.index(max_orders) + 1]
    project = copy_dbt_project(DBT_PROJECT, session.work / "scale_project")
    points = []
    for label in chosen:
        point = ScalePoint(label, SCALE_POINTS[label])
        try:
            points.append(measure_point(session, point, project))
        except RuntimeError as error:
            point.missing = f"failed: {str(error).splitlines()[0]}"
            points.append(point)
    beyond = labels[len(chosen) :]
    not_run = [
        f"~{label} orders: not measured (beyond --max-orders {max_orders})" for label in beyond
    ]
    report_scale(report, points, not_run)
    report.add_targets(*targets(points))


def main(argv: list[str] | None = None) -> int:
    if serve_child(argv, CHILDREN):
        return 0
    parser = argparse.ArgumentParser(description="The scale curve, to ~10M orders with --full.")
    parser.add_argument("--max-orders", choices=list(SCALE_POINTS), default="1M")
    parser.add_argument("--full", action="store_true", help="the same as --max-orders 10M")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "scale.md")
    add_budget_arguments(parser, minutes=45)
    args = parser.parse_args(argv)
    largest = "10M" if args.full else args.max_orders
    return run_benchmark(args.output, "Scale benchmark", args, lambda s, r: run(s, r, largest))


if __name__ == "__main__":
    raise SystemExit(main())
