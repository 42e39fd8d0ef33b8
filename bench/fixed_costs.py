"""Fixed costs of a run, whatever the data: a flow's start, the Prefect server's, dbt's parse.

Each in a fresh process:
- a trivial flow: when its body starts and when the process ends, counted from the
  launch, with the ephemeral Prefect server (a fresh PREFECT_HOME, then the same one
  again) and against a running `prefect server start`;
- `prefect server start` until /api/health answers (a fresh PREFECT_HOME);
- `dbt parse` of a copy of dbt/: full (--no-partial-parse), partial with the same
  `--vars`, and partial with a new as-of date in `--vars`.

Prints markdown and writes bench/results/fixed_costs.md.

    uv run python bench/fixed_costs.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    AS_OF,
    DBT_PROJECT,
    RESULTS_DIR,
    WINDOW,
    Session,
    StepSkipped,
    add_budget_arguments,
    copy_dbt_project,
    load_average,
    run_benchmark,
    run_child,
    run_env,
    serve_child,
)
from bench.report import Report, markdown_table, secs

SCRIPT = Path(__file__).resolve()


def child_flow_start(options: Mapping[str, Any]) -> dict[str, Any]:
    """A trivial flow: when its body starts, counted from the launch of the process."""
    from prefect import flow

    spawned = float(options["spawned"])
    body: dict[str, float] = {}

    @flow(name="bench-flow-start")
    def trivial() -> None:
        body["start"] = time.time() - spawned

    trivial()
    return {"body_start": body["start"]}


def child_parse(options: Mapping[str, Any]) -> dict[str, Any]:
    """`dbt parse` of a copy of the project for an as-of date, full or partial."""
    from dbt.cli.main import dbtRunner

    from churn.build.commands import dbt_vars

    project = str(options["project"])
    as_of = dt.date.fromisoformat(str(options["as_of"]))
    args = ["parse", "--quiet", "--project-dir", project, "--profiles-dir", project]
    args += ["--vars", dbt_vars(as_of, WINDOW)]
    if not options["partial"]:
        args.append("--no-partial-parse")
    started = time.perf_counter()
    result = dbtRunner().invoke(args)
    if not result.success:
        raise RuntimeError(f"dbt parse failed: {result.exception}")
    return {"invoke": time.perf_counter() - started}


CHILDREN = {"flow-start": child_flow_start, "parse": child_parse}


def measure(session: Session) -> list[list[str]]:
    rows: list[list[str]] = []
    budget = session.budget

    def attempt(what: str, measure: Callable[[], list[str]]) -> None:
        try:
            rows.append([what, *measure()])
        except StepSkipped as skipped:
            rows.append([what, str(skipped), "-"])

    def flow_start(env: dict[str, str]) -> list[str]:
        result = run_child(SCRIPT, "flow-start", {}, budget, env)
        return [secs(result["body_start"]), secs(result["process_seconds"])]

    ephemeral = run_env(session.work / "fixed_costs_home")
    attempt("flow, ephemeral server, fresh PREFECT_HOME", lambda: flow_start(ephemeral))
    attempt("flow, ephemeral server, the same PREFECT_HOME again", lambda: flow_start(ephemeral))

    def server_start() -> list[str]:
        session.prefect_api_url()
        return ["-", secs(session.server_start_seconds)]

    attempt("`prefect server start` until /api/health answers", server_start)
    if session.server_start_seconds is not None:
        running = {**ephemeral, "PREFECT_API_URL": session.prefect_api_url()}
        attempt("flow, running server (PREFECT_API_URL set)", lambda: flow_start(running))
    project = copy_dbt_project(DBT_PROJECT, session.work / "parse_project")

    def parse(partial: bool, as_of: dt.date) -> list[str]:
        options = {"project": str(project), "partial": partial, "as_of": as_of.isoformat()}
        result = run_child(SCRIPT, "parse", options, budget, ephemeral)
        return [secs(result["invoke"]), secs(result["process_seconds"])]

    next_week = AS_OF + dt.timedelta(days=7)
    attempt("dbt parse, full (--no-partial-parse)", lambda: parse(False, AS_OF))
    attempt("dbt parse, partial, the same --vars", lambda: parse(True, AS_OF))
    attempt("dbt parse, partial, a new as-of date in --vars", lambda: parse(True, next_week))
    return rows


def run(session: Session, report: Report) -> None:
    rows = measure(session)
    report.add(
        "## Fixed costs of a run (each in a fresh process)",
        "",
        markdown_table(["what", "flow body / dbt invoke s", "process s"], rows),
        "",
        "- flows: when a trivial flow's body starts, counted from the launch of its process "
        "(interpreter start and imports included); `process s`: launch to exit.",
        "- dbt parse: dbtRunner's parse alone; `process s` adds starting Python and "
        "importing dbt. Each parse starts from the state the one before it left.",
        f"- load average (1, 5, 15 min) after these runs: {load_average()}",
        "",
    )


def main(argv: list[str] | None = None) -> int:
    if serve_child(argv, CHILDREN):
        return 0
    parser = argparse.ArgumentParser(description="Fixed costs: flow start, server start, parse.")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "fixed_costs.md")
    add_budget_arguments(parser, minutes=15, step_timeout=300)
    args = parser.parse_args(argv)
    return run_benchmark(args.output, "Fixed costs benchmark", args, run)


if __name__ == "__main__":
    raise SystemExit(main())
