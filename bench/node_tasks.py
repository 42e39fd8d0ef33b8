"""Per-node Prefect tasks against one plain dbt invocation, at ~100k orders.

A warehouse is landed and fully built first (bench/scale.py's steps); then, with a
running `prefect server start`, a flow in a fresh process runs `dbt build` (same as-of,
no --full-refresh) plainly in one task, with one Prefect task per node
(PrefectDbtRunner, `run_dbt_with_node_tasks`), and plainly again.

Prints markdown and writes bench/results/node_tasks.md.

    uv run python bench/node_tasks.py
    uv run python bench/node_tasks.py --customers 1000    # a short smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scale
from bench.common import (
    AS_OF,
    DBT_PROJECT,
    RESULTS_DIR,
    SEED_SCALE_CUSTOMERS,
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
)
from bench.report import Report, approx, markdown_table, secs

SCRIPT = Path(__file__).resolve()
MODES = (
    ("plain", "plain dbtRunner in one task"),
    ("tasks", "PrefectDbtRunner, one task per node"),
    ("plain", "plain dbtRunner in one task (again)"),
)


def child_flow(options: Mapping[str, Any]) -> dict[str, Any]:
    """A flow running `dbt build` with per-node Prefect tasks, or plainly in one task."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from churn.build.commands import build_args
    from churn.build.invocation import run_dbt, run_dbt_with_node_tasks

    spawned = float(options["spawned"])
    warehouse = bench_warehouse(str(options["database"]))
    project = Path(str(options["project"]))
    args = build_args(AS_OF, WINDOW)

    @task(name="dbt-build", cache_policy=NO_CACHE)
    def plain_build() -> int:
        return len(run_dbt(warehouse, args, project))

    @flow(name=f"bench-dbt-{options['mode']}")
    def build() -> dict[str, float]:
        body_start = time.time() - spawned
        started = time.perf_counter()
        if options["mode"] == "tasks":
            nodes = len(run_dbt_with_node_tasks(warehouse, args, project))
        else:
            nodes = plain_build()
        return {"body_start": body_start, "dbt": time.perf_counter() - started, "nodes": nodes}

    return build()


CHILDREN = {"flow": child_flow}


def measure(session: Session, customers: int) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    """Orders landed, and each flow run's result (None where it was not measured)."""
    env = run_env(session.work / "prefect_home")
    project = copy_dbt_project(DBT_PROJECT, session.work / "node_tasks_project")
    results: list[tuple[str, dict[str, Any]]] = []
    with bench_database("node_tasks") as warehouse:
        landing = str(session.work / "landing")
        base = {"database": warehouse.database, "as_of": AS_OF.isoformat()}
        land = {**base, "customers": customers, "directory": landing}
        landed = run_child(scale.SCRIPT, "land", land, session.budget, env)
        build = {**base, "project": str(project), "full_refresh": True}
        run_child(scale.SCRIPT, "dbt", build, session.budget, env)
        server_env = {**env, "PREFECT_API_URL": session.prefect_api_url()}
        options = {"database": warehouse.database, "project": str(project)}
        for mode, _ in MODES:
            try:
                result = run_child(
                    SCRIPT, "flow", {**options, "mode": mode}, session.budget, server_env
                )
            except StepSkipped as skipped:
                results.append((mode, {"missing": str(skipped)}))
                continue
            results.append((mode, result))
            print(f"node tasks, {mode}: dbt {result['dbt']:.1f} s", flush=True)
    return int(landed["orders"]), results


def per_node_cost(results: list[tuple[str, dict[str, Any]]]) -> str:
    """The per-node tasks' extra wall and CPU time against the mean of the plain runs."""
    plain = [result for mode, result in results if mode == "plain" and "dbt" in result]
    tasks = [result for mode, result in results if mode == "tasks" and "dbt" in result]
    if not plain or not tasks:
        return "- per-node tasks' extra cost: not measured"
    task = tasks[0]
    extra_dbt = task["dbt"] - sum(result["dbt"] for result in plain) / len(plain)
    extra_cpu = task["process_cpu"] - sum(r["process_cpu"] for r in plain) / len(plain)
    return (
        f"- per-node tasks against the mean of the plain runs: {extra_dbt:+.1f} s of dbt "
        f"time, {extra_cpu:+.1f} CPU-seconds, {extra_cpu / max(task['nodes'], 1):+.2f} "
        f"CPU-seconds a node ({task['nodes']} nodes)"
    )


def run(session: Session, report: Report, customers: int) -> None:
    orders, results = measure(session, customers)
    rows = []
    for (_, label), (_, result) in zip(MODES, results, strict=False):
        if "missing" in result:
            rows.append([label, result["missing"], "-", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                label,
                str(result["nodes"]),
                secs(result["dbt"]),
                secs(result["body_start"]),
                secs(result["process_seconds"]),
                secs(result["process_cpu"]),
                f"{result['load']:.1f}",
            ]
        )
    headers = ["dbt in the flow", "nodes", "dbt s", "flow body start s", "process s"]
    report.add(
        f"## Per-node dbt tasks against one plain invocation, {approx(orders)} orders "
        "(running Prefect server)",
        "",
        markdown_table([*headers, "process CPU s", "load at launch"], rows),
        "",
        per_node_cost(results),
        "- `dbt build` without --full-refresh on the already built warehouse (same as-of), "
        "in a flow in a fresh process with PREFECT_API_URL set; `dbt s` is the dbt call "
        "inside the flow body; `process CPU s` is the user + system time of that process "
        "and its children (PostgreSQL and the server not counted).",
        f"- load average (1, 5, 15 min) after these runs: {load_average()}",
        "",
    )


def main(argv: list[str] | None = None) -> int:
    if serve_child(argv, CHILDREN):
        return 0
    parser = argparse.ArgumentParser(description="Per-node dbt tasks against plain dbt.")
    parser.add_argument("--customers", type=int, default=SEED_SCALE_CUSTOMERS)
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "node_tasks.md")
    add_budget_arguments(parser, minutes=20, step_timeout=600)
    args = parser.parse_args(argv)
    title = "Per-node dbt tasks benchmark"
    return run_benchmark(args.output, title, args, lambda s, r: run(s, r, args.customers))


if __name__ == "__main__":
    raise SystemExit(main())
