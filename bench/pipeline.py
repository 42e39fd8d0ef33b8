"""Benchmark of the whole pipeline: ours against a naive one, the scale curve, fixed costs.

What it measures (every step of ours in a fresh subprocess, so its peak RSS is its own):
- end to end at 10k customers, 500 products, 365 days (~100k orders): `python
  flows/main.py --as-of 2026-11-23 --customers 10000 --history-days 365` with a fresh
  CHURN_DATA_DIR (a first run: embedded warehouse, history bootstrap, dbt build, report
  in dry run), once with the ephemeral Prefect server of an ad hoc run and once with an
  already running `prefect server start`; against the naive pipeline on the same machine
  in the same run: a row-by-row Faker loop (bench.generation.naive_generate), the CSVs
  loaded with `dbt seed` (a documented fraction, extrapolated linearly), `dbt run` and
  `dbt test` of bench/naive/ (weekly churn as a cross join of weeks x customers with a
  max() over their orders), and the report computed from the CSVs with pandas.
- the scale curve at ~100k, 1M and 10M orders (10k, 100k, 1M customers over 365 days):
  generate + land rows per second, the full dbt build (plain dbt runner, --full-refresh),
  a following weekly incremental run (the next week landed by the generation code, then
  dbt build for as-of + 7 days) and the peak RSS of each step; the slowest models from
  dbt's own timings.
- at ~100k orders, with the running server: a flow running dbt with one Prefect task per
  node (run_dbt_with_node_tasks) against one plain invocation in one task.
- fixed costs: the ephemeral Prefect server start, a flow against a running server, and
  `dbt parse` full against partial, each in a fresh process.

Prints markdown tables and writes them to bench/results/pipeline.md (after every stage,
so an interrupted run keeps what it measured).

    uv run python bench/pipeline.py                  # up to 1M orders (default)
    uv run python bench/pipeline.py --full           # up to 10M orders
    uv run python bench/pipeline.py --max-orders 100k --naive-seed-fraction 0.02

The server comes from BENCH_DATABASE_URL (default: postgres on 127.0.0.1:5432); each
measurement gets its own database named bench_*, dropped afterwards. The end-to-end runs
of ours use the embedded warehouse of an ad hoc run instead, in a temporary folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `flows` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BENCH_ROOT,
    RESULTS_DIR,
    bench_database,
    machine_description,
    markdown_table,
    server_url,
)
from churn.settings import RunParameters
from churn.warehouse.connection import Warehouse, parse_warehouse_url

PROJECT_ROOT = BENCH_ROOT.parent
DBT_PROJECT = PROJECT_ROOT / "dbt"
NAIVE_TEMPLATE = BENCH_ROOT / "naive"
AS_OF = dt.date(2026, 11, 23)
HISTORY_DAYS = 365
PRODUCTS = 500
SEED = 42
LOCALE = "en_US"
WINDOW = RunParameters().churn_window_days
E2E_CUSTOMERS = 10_000
RAW_TABLES = ("customers", "products", "orders", "order_items", "cancellations")
# Label of the scale point -> customers signing up over 365 days (about 10 orders each).
SCALE_POINTS = {"100k": 10_000, "1M": 100_000, "10M": 1_000_000}
# Telemetry calls fail without internet; a slow ephemeral server start needs time.
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PYTHONUNBUFFERED": "1",
}


# -- children: one measurement each, in a fresh process ---------------------------------------


def _peak_rss(who: int = resource.RUSAGE_SELF) -> int:
    """Peak resident set size in bytes (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(who).ru_maxrss * 1024


def child_flow_start(options: Mapping[str, Any]) -> dict[str, Any]:
    """A trivial flow: when its body starts after the process was spawned, and when it ends.

    Without PREFECT_API_URL this includes the ephemeral server's start.
    """
    from prefect import flow

    spawned = float(options["spawned"])
    body: dict[str, float] = {}

    @flow(name="bench-flow-start")
    def trivial() -> None:
        body["start"] = time.time() - spawned

    trivial()
    return {"body_start": body["start"], "total": time.time() - spawned}


def child_parse(options: Mapping[str, Any]) -> dict[str, Any]:
    """`dbt parse` of a copy of the project: full (--no-partial-parse) or partial."""
    from dbt.cli.main import dbtRunner

    from churn.build.commands import dbt_vars

    project = str(options["project"])
    args = ["parse", "--quiet", "--project-dir", project, "--profiles-dir", project]
    args += ["--vars", dbt_vars(AS_OF, WINDOW)]
    if not options["partial"]:
        args.append("--no-partial-parse")
    started = time.perf_counter()
    result = dbtRunner().invoke(args)
    if not result.success:
        raise RuntimeError(f"dbt parse failed: {result.exception}")
    return {
        "invoke": time.perf_counter() - started,
        "total": time.time() - float(options["spawned"]),
    }


def child_e2e(options: Mapping[str, Any]) -> dict[str, Any]:
    """`python flows/main.py ...` as a user runs it; the environment says which server."""
    command = [
        sys.executable,
        str(PROJECT_ROOT / "flows" / "main.py"),
        "--as-of",
        AS_OF.isoformat(),
        "--customers",
        str(options["customers"]),
        "--history-days",
        str(HISTORY_DAYS),
        "--products",
        str(PRODUCTS),
    ]
    started = time.perf_counter()
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"flows/main.py failed:\n{completed.stderr[-3000:]}")
    report = Path(str(options["reports_dir"])) / AS_OF.isoformat() / "report.txt"
    return {
        "seconds": seconds,
        # The largest of flows/main.py and the processes it waited for (the ephemeral
        # server); the embedded PostgreSQL daemonises and is not counted.
        "peak_rss": _peak_rss(resource.RUSAGE_CHILDREN),
        "report_written": report.exists(),
    }


def child_land(options: Mapping[str, Any]) -> dict[str, Any]:
    """Plan and land what the generation flow would for `as_of` (history or next week)."""
    from churn.simulation.landing import write_and_land_activity
    from churn.simulation.plan import plan_generation
    from churn.simulation.state import read_landed_state
    from churn.warehouse.raw import landing_transaction

    warehouse = parse_warehouse_url(str(options["url"]), origin="bench")
    with landing_transaction(warehouse) as conn:
        state = read_landed_state(conn)
    plan = plan_generation(
        state,
        as_of=dt.date.fromisoformat(str(options["as_of"])),
        seed=SEED,
        customers=int(options["customers"]),
        products=PRODUCTS,
        history_days=HISTORY_DAYS,
        locale=LOCALE,
    )
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
        "reason": plan.reason,
        "peak_rss": _peak_rss(),
    }


def child_dbt(options: Mapping[str, Any]) -> dict[str, Any]:
    """The subflow's dbt commands run plainly (raw checks, then the build) and node times.

    A full build runs with --full-refresh; an incremental one gets the checks window the
    subflow would give it after a build for `last_as_of`.
    """
    from churn.build.commands import LastBuild, build_steps, checks_window_start
    from churn.build.invocation import run_dbt

    warehouse = parse_warehouse_url(str(options["url"]), origin="bench")
    as_of = dt.date.fromisoformat(str(options["as_of"]))
    full_refresh = bool(options["full_refresh"])
    last_as_of = options.get("last_as_of")
    checks_from = (
        None
        if full_refresh or last_as_of is None
        else checks_window_start(LastBuild(WINDOW, dt.date.fromisoformat(last_as_of)), as_of)
    )
    steps = build_steps(as_of, WINDOW, full_refresh=full_refresh, checks_from=checks_from)
    rows = []
    started = time.perf_counter()
    for step in steps:
        rows += [
            row.as_row() for row in run_dbt(warehouse, step.args, Path(str(options["project"])))
        ]
    return {
        "seconds": time.perf_counter() - started,
        "nodes": len(rows),
        "models": sorted(
            ((row["node"], row["seconds"]) for row in rows if row["type"] == "model"),
            key=lambda item: -item[1],
        ),
        "test_seconds": sum(row["seconds"] for row in rows if row["type"] == "test"),
        "tests": sorted(
            ((row["node"].split(".")[2], row["seconds"]) for row in rows if row["type"] == "test"),
            key=lambda item: -item[1],
        )[:3],
        "peak_rss": _peak_rss(),
    }


def child_node_tasks(options: Mapping[str, Any]) -> dict[str, Any]:
    """A flow running `dbt build` with per-node Prefect tasks, or plainly in one task."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from churn.build.commands import build_args
    from churn.build.invocation import run_dbt, run_dbt_with_node_tasks

    spawned = float(options["spawned"])
    warehouse = parse_warehouse_url(str(options["url"]), origin="bench")
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

    timings = build()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        **timings,
        "total": time.time() - spawned,
        # CPU time of this process: what per-node tasks cost, less swayed by other load.
        "cpu": usage.ru_utime + usage.ru_stime,
    }


CHILDREN: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "flow-start": child_flow_start,
    "parse": child_parse,
    "e2e": child_e2e,
    "land": child_land,
    "dbt": child_dbt,
    "node-tasks": child_node_tasks,
}


# -- running children from the parent ---------------------------------------------------------


class StepSkipped(RuntimeError):
    """A step was not measured; the message says why (goes into the table)."""


@dataclass
class Budget:
    """The wall-clock time the benchmark may still spend, and each step's limit."""

    deadline: float
    step_timeout: float

    def timeout(self) -> float:
        left = self.deadline - time.monotonic()
        if left < 10:
            raise StepSkipped("not measured (time budget spent)")
        return min(self.step_timeout, left)


def run_child(
    mode: str,
    options: Mapping[str, Any],
    budget: Budget,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run one child measurement; on timeout kill its whole process group."""
    timeout = budget.timeout()
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    options = {**options, "spawned": time.time()}
    process = subprocess.Popen(
        [*command, "--child-options", json.dumps(options)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise StepSkipped(f"not measured (over {timeout:.0f} s, stopped)") from None
    if process.returncode != 0:
        raise RuntimeError(f"child {mode} failed ({process.returncode}):\n{stderr[-4000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def base_env(prefect_home: Path) -> dict[str, str]:
    """The environment of ours: no API URL (ad hoc), the benchmark's own PREFECT_HOME."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(QUIET_ENV)
    env["PREFECT_HOME"] = str(prefect_home)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrefectServer:
    """`prefect server start` in a subprocess of its own, with its own PREFECT_HOME."""

    process: subprocess.Popen[bytes]
    api_url: str
    start_seconds: float

    @classmethod
    def start(cls, home: Path, log: Path, timeout: float = 180) -> PrefectServer:
        port = _free_port()
        env = base_env(home)
        started = time.perf_counter()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "prefect"),
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=PROJECT_ROOT,
                start_new_session=True,
            )
        server = cls(process, f"http://127.0.0.1:{port}/api", 0.0)
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"prefect server exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{server.api_url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        server.start_seconds = time.perf_counter() - started
                        return server
            except OSError:
                time.sleep(0.5)
        server.stop()
        raise RuntimeError(f"prefect server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _libpq_url(warehouse: Warehouse) -> str:
    return f"postgresql://{warehouse.user}@{warehouse.host}:{warehouse.port}/{warehouse.database}"


def copy_dbt_project(source: Path, target: Path) -> Path:
    """A copy of a dbt project without its target/ and logs/ (a fresh partial-parse state)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("target", "logs"))
    return target


def _load_note() -> str:
    """Other work on the machine slows every figure: the load when a section was measured."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"- load average (1, 5, 15 min) at the end of this section: {load}"


def _mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _seconds(value: float) -> str:
    return f"{value:,.1f}"


# -- stage: fixed costs -----------------------------------------------------------------------


@dataclass
class Report:
    """The markdown written so far, rewritten to the output file after every stage."""

    output: Path
    lines: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        """Append lines, print them, and rewrite the output file."""
        self.lines.extend(lines)
        for line in lines:
            print(line, flush=True)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text("\n".join(self.lines) + "\n")


def measure_fixed_costs(
    report: Report, budget: Budget, env: dict[str, str], server: PrefectServer, work: Path
) -> None:
    rows: list[list[str]] = []

    def attempt(what: str, measure: Callable[[], list[str]]) -> None:
        try:
            rows.append([what, *measure()])
        except StepSkipped as skipped:
            rows.append([what, str(skipped), "-"])

    def flow_start(flow_env: dict[str, str]) -> list[str]:
        result = run_child("flow-start", {}, budget, flow_env)
        return [_seconds(result["body_start"]), _seconds(result["total"])]

    server_env = {**env, "PREFECT_API_URL": server.api_url}
    attempt(
        "ephemeral server, fresh PREFECT_HOME (a user's very first run)", lambda: flow_start(env)
    )
    attempt("ephemeral server, PREFECT_HOME kept (every later ad hoc run)", lambda: flow_start(env))
    attempt("running server (PREFECT_API_URL set)", lambda: flow_start(server_env))
    rows.append(
        ["`prefect server start` until /api/health answers", _seconds(server.start_seconds), "-"]
    )
    project = copy_dbt_project(DBT_PROJECT, work / "parse_project")

    def parse(partial: bool) -> list[str]:
        result = run_child("parse", {"project": str(project), "partial": partial}, budget, env)
        return [_seconds(result["invoke"]), _seconds(result["total"])]

    attempt("dbt parse, full (--no-partial-parse)", lambda: parse(False))
    attempt("dbt parse, partial (same vars, nothing changed)", lambda: parse(True))
    report.add(
        "## Fixed costs of a run (each in a fresh process)",
        "",
        markdown_table(["what", "body / invoke s", "process total s"], rows),
        "",
        "- flows: `body` is when a trivial flow's body starts, counted from spawning the "
        "process (interpreter start and imports included); `total` when the process is done.",
        "- dbt parse: `invoke` is dbtRunner's parse alone, `total` includes starting Python "
        "and importing dbt. A new `--vars` value (every weekly as-of date) invalidates "
        "partial parsing, so scheduled runs pay the full parse.",
        _load_note(),
        "",
    )


# -- stage: end to end, ours --------------------------------------------------------------------


@dataclass
class EndToEnd:
    label: str
    seconds: float | None
    peak_rss: int | None
    note: str


def run_ours_e2e(
    label: str, budget: Budget, env: dict[str, str], work: Path, name: str
) -> EndToEnd:
    data = work / f"{name}_data"
    reports = work / f"{name}_reports"
    env = {**env, "CHURN_DATA_DIR": str(data), "CHURN_REPORTS_DIR": str(reports)}
    try:
        result = run_child(
            "e2e", {"customers": E2E_CUSTOMERS, "reports_dir": str(reports)}, budget, env
        )
    except StepSkipped as skipped:
        return EndToEnd(label, None, None, str(skipped))
    finally:
        # The embedded PostgreSQL outlives the run by design: stop it.
        subprocess.run(
            [sys.executable, "-m", "churn.warehouse", "stop"],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(data, ignore_errors=True)
    note = "report written" if result["report_written"] else "NO report file"
    return EndToEnd(label, result["seconds"], result["peak_rss"], note)


# -- stage: the naive pipeline -----------------------------------------------------------------


@dataclass
class NaiveRun:
    raw_rows: int
    orders: int
    generate: float
    seeded_rows: int
    seed: float
    empty_seed: float
    dbt_run: float
    dbt_test: float
    report: float
    report_text: str

    @property
    def fraction(self) -> float:
        return self.seeded_rows / self.raw_rows

    @property
    def full_seed(self) -> float:
        """dbt's fixed cost plus the per-row part scaled linearly to every row."""
        if self.seeded_rows >= self.raw_rows:
            return self.seed
        return self.empty_seed + max(self.seed - self.empty_seed, 0.0) / self.fraction

    @property
    def total(self) -> float:
        return self.generate + self.full_seed + self.dbt_run + self.dbt_test + self.report


def copy_full_csvs(warehouse: Warehouse, csv_dir: Path) -> None:
    """Replace the seeded prefix with every row (COPY, not timed) for `dbt run`/`dbt test`."""
    with warehouse.connect() as conn:
        for table in RAW_TABLES:
            path = csv_dir / f"{table}.csv"
            header = path.open().readline().strip()
            conn.execute(f"truncate raw.{table}")
            with (
                conn.cursor().copy(
                    f"copy raw.{table} ({header}) from stdin (format csv, header true)"
                ) as copy,
                path.open("rb") as source,
            ):
                while chunk := source.read(1 << 20):
                    copy.write(chunk)


def run_dbt_cli(warehouse: Warehouse, project: Path, command: str) -> float:
    """`dbt <command>` on the naive project as its own process, as a user types it."""
    env = {**os.environ, **QUIET_ENV, **warehouse.dbt_env()}
    started = time.perf_counter()
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "--quiet",
            command,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"naive dbt {command} failed:\n{completed.stdout[-3000:]}")
    return seconds


def pandas_report(csv_dir: Path, as_of: dt.date) -> str:
    """The week's churn and order figures against the week before, from the CSVs."""
    import pandas as pd

    orders = pd.read_csv(csv_dir / "orders.csv", parse_dates=["order_date"])
    items = pd.read_csv(csv_dir / "order_items.csv")
    lines = []
    for end in (as_of - dt.timedelta(days=7), as_of):
        end_ts = pd.Timestamp(end)
        completed = orders[(orders.status == "completed") & (orders.order_date < end_ts)]
        last_order = completed.groupby("customer_id").order_date.max()
        churned = int((last_order < end_ts - pd.Timedelta(days=WINDOW)).sum())
        week = orders[
            (orders.order_date >= end_ts - pd.Timedelta(days=7)) & (orders.order_date < end_ts)
        ]
        lines_of_week = items.merge(week[week.status == "completed"], on="order_id")
        revenue = float((lines_of_week.quantity * lines_of_week.unit_price).sum())
        lines.append(
            f"week to {end}: churn {churned / max(len(last_order), 1):.1%}, "
            f"{len(week):,} orders, {int((week.status == 'cancelled').sum()):,} cancelled, "
            f"revenue {revenue:,.2f}"
        )
    return "; ".join(lines)


def run_naive(url: str, work: Path, customers: int, fraction: float) -> NaiveRun:
    from bench.generation import dbt_seed, naive_generate

    csv_dir = work / "naive_csv"
    started = time.perf_counter()
    counts = naive_generate(csv_dir, customers)
    generate = time.perf_counter() - started
    print(f"naive: {sum(counts.values()):,} rows generated in {generate:.1f} s", flush=True)
    with bench_database(url, "naive") as warehouse:
        started = time.perf_counter()
        seeded = dbt_seed(warehouse, csv_dir, work / "naive_seed", fraction)
        seed = time.perf_counter() - started
        print(f"naive: {seeded:,} rows seeded in {seed:.1f} s", flush=True)
        copy_full_csvs(warehouse, csv_dir)
        project = copy_dbt_project(NAIVE_TEMPLATE, work / "naive_project")
        dbt_run = run_dbt_cli(warehouse, project, "run")
        dbt_test = run_dbt_cli(warehouse, project, "test")
    empty_seed = 0.0
    if seeded < sum(counts.values()):
        with bench_database(url, "naive_empty") as warehouse:
            started = time.perf_counter()
            dbt_seed(warehouse, csv_dir, work / "naive_seed_empty", 0.0)
            empty_seed = time.perf_counter() - started
    started = time.perf_counter()
    text = pandas_report(csv_dir, AS_OF)
    report = time.perf_counter() - started
    shutil.rmtree(csv_dir, ignore_errors=True)
    return NaiveRun(
        raw_rows=sum(counts.values()),
        orders=counts["orders"],
        generate=generate,
        seeded_rows=seeded,
        seed=seed,
        empty_seed=empty_seed,
        dbt_run=dbt_run,
        dbt_test=dbt_test,
        report=report,
        report_text=text,
    )


def report_end_to_end(report: Report, ours: list[EndToEnd], naive: NaiveRun | str) -> None:
    rows = [
        [
            run.label,
            _seconds(run.seconds) if run.seconds is not None else run.note,
            _mib(run.peak_rss) if run.peak_rss is not None else "-",
            run.note if run.seconds is not None else "-",
        ]
        for run in ours
    ]
    lines = []
    if isinstance(naive, NaiveRun):
        rows.append(
            [
                "naive: Faker loop + dbt seed + dbt run + dbt test + pandas",
                _seconds(naive.total),
                "-",
                f"{naive.orders:,} orders, {naive.raw_rows:,} raw rows",
            ]
        )
        for run in ours:
            if run.seconds is not None:
                lines.append(
                    f"- naive / {run.label}: **{naive.total / run.seconds:,.1f}x** "
                    f"({naive.total:,.0f} s against {run.seconds:,.0f} s)"
                )
        seed_note = (
            f"{_seconds(naive.full_seed)} (extrapolated: the first {naive.fraction:.1%} of each "
            f"file, {naive.seeded_rows:,} rows, in {_seconds(naive.seed)} s; the same seeds "
            f"with no rows in {_seconds(naive.empty_seed)} s)"
            if naive.seeded_rows < naive.raw_rows
            else _seconds(naive.seed)
        )
        breakdown = markdown_table(
            ["naive step", "seconds"],
            [
                ["row-by-row Faker loop writing CSV", _seconds(naive.generate)],
                ["dbt seed of every row", seed_note],
                ["dbt run (3 models, cross join weeks x customers)", _seconds(naive.dbt_run)],
                ["dbt test (7 tests)", _seconds(naive.dbt_test)],
                ["report from the CSVs with pandas", _seconds(naive.report)],
                ["total", _seconds(naive.total)],
            ],
        )
        lines += [
            "",
            breakdown,
            "",
            "- dbt run and dbt test read every row: after the timed partial seed the seed "
            "tables were refilled with all rows by COPY (not timed).",
            f"- naive report: {naive.report_text}",
        ]
    else:
        rows.append(["naive", naive, "-", "-"])
    report.add(
        f"## End to end at {E2E_CUSTOMERS:,} customers, {PRODUCTS} products, "
        f"{HISTORY_DAYS} days to {AS_OF}",
        "",
        markdown_table(["pipeline", "seconds", "peak RSS", "note"], rows),
        "",
        "- ours: `python flows/main.py --as-of 2026-11-23 --customers 10000 --history-days 365` "
        "in a fresh process with a fresh CHURN_DATA_DIR (first run: embedded PostgreSQL "
        "initdb, history bootstrap, raw checks, dbt build with --full-refresh, report in dry "
        "run); per-node dbt tasks off (the ad hoc default). The PREFECT_HOME was already "
        "set up (see fixed costs for a first one).",
        "- peak RSS: the largest of our processes (flows/main.py and the ephemeral server it "
        "starts); PostgreSQL not counted.",
        *lines,
        _load_note(),
        "",
    )


# -- stage: the scale curve --------------------------------------------------------------------


@dataclass
class ScalePoint:
    label: str
    customers: int
    cells: dict[str, str] = field(default_factory=dict)
    slowest: list[tuple[str, float]] = field(default_factory=list)
    test_seconds: float | None = None
    slowest_tests: list[tuple[str, float]] = field(default_factory=list)
    node_tasks: list[list[str]] = field(default_factory=list)
    week_slowest: list[tuple[str, float]] = field(default_factory=list)
    week_test_seconds: float | None = None
    # the figures the targets are judged on (seconds, bytes)
    full_total: float | None = None
    full_dbt: float | None = None
    week_total: float | None = None
    week_dbt: float | None = None
    peak_rss: list[int] = field(default_factory=list)


SCALE_COLUMNS = [
    "orders",
    "customers",
    "raw rows",
    "generate + land s",
    "rows/s",
    "land peak RSS",
    "dbt build --full-refresh s",
    "dbt peak RSS",
    "full pipeline s",
    "week: rows landed",
    "week: land s",
    "week: dbt build s",
    "week total / full",
]


def measure_scale_point(
    point: ScalePoint,
    url: str,
    project: Path,
    budget: Budget,
    env: dict[str, str],
    server: PrefectServer | None,
    work: Path,
) -> None:
    """Land history, full build, (node tasks at 100k), then a weekly incremental run."""
    cells = point.cells
    with bench_database(url, f"scale_{point.label.lower()}") as warehouse:
        options = {"url": _libpq_url(warehouse), "customers": point.customers}
        cells["customers"] = f"{point.customers:,}"
        land = run_child(
            "land",
            {**options, "as_of": AS_OF.isoformat(), "directory": str(work / "landing")},
            budget,
            env,
        )
        cells["orders"] = f"{land['orders']:,}"
        cells["raw rows"] = f"{land['rows']:,}"
        cells["generate + land s"] = _seconds(land["seconds"])
        cells["rows/s"] = f"{land['rows'] / land['seconds']:,.0f}"
        cells["land peak RSS"] = _mib(land["peak_rss"])
        point.peak_rss.append(land["peak_rss"])
        print(f"scale {point.label}: landed {land['rows']:,} rows in {land['seconds']:.1f} s")
        dbt_options = {"url": options["url"], "project": str(project)}
        try:
            full = run_child(
                "dbt",
                {**dbt_options, "as_of": AS_OF.isoformat(), "full_refresh": True},
                budget,
                env,
            )
        except StepSkipped as skipped:
            cells["dbt build --full-refresh s"] = str(skipped)
            return
        cells["dbt build --full-refresh s"] = _seconds(full["seconds"])
        cells["dbt peak RSS"] = _mib(full["peak_rss"])
        point.peak_rss.append(full["peak_rss"])
        full_total = land["seconds"] + full["seconds"]
        point.full_total, point.full_dbt = full_total, full["seconds"]
        cells["full pipeline s"] = _seconds(full_total)
        point.slowest = [(name, seconds) for name, seconds in full["models"][:5]]
        point.test_seconds = full["test_seconds"]
        point.slowest_tests = [(name, seconds) for name, seconds in full["tests"]]
        print(f"scale {point.label}: full dbt build in {full['seconds']:.1f} s", flush=True)
        if server is not None:
            point.node_tasks = measure_node_tasks(dbt_options, budget, env, server)
        next_week = (AS_OF + dt.timedelta(days=7)).isoformat()
        try:
            week = run_child(
                "land",
                {**options, "as_of": next_week, "directory": str(work / "landing")},
                budget,
                env,
            )
            cells["week: rows landed"] = f"{week['rows']:,}"
            cells["week: land s"] = _seconds(week["seconds"])
            week_dbt = run_child(
                "dbt",
                {
                    **dbt_options,
                    "as_of": next_week,
                    "full_refresh": False,
                    "last_as_of": AS_OF.isoformat(),
                },
                budget,
                env,
            )
        except StepSkipped as skipped:
            cells["week: dbt build s"] = str(skipped)
            return
        cells["week: dbt build s"] = _seconds(week_dbt["seconds"])
        point.week_slowest = [(name, seconds) for name, seconds in week_dbt["models"][:5]]
        point.week_test_seconds = week_dbt["test_seconds"]
        week_total = week["seconds"] + week_dbt["seconds"]
        point.week_total, point.week_dbt = week_total, week_dbt["seconds"]
        point.peak_rss += [week["peak_rss"], week_dbt["peak_rss"]]
        cells["week total / full"] = (
            f"{week_total / full_total:.0%} (dbt alone {week_dbt['seconds'] / full['seconds']:.0%})"
        )


def measure_node_tasks(
    dbt_options: Mapping[str, Any], budget: Budget, env: dict[str, str], server: PrefectServer
) -> list[list[str]]:
    """dbt build in a flow: one task per node against one plain invocation in one task."""
    server_env = {**env, "PREFECT_API_URL": server.api_url}
    rows = []
    for mode, label in (
        ("plain", "plain dbtRunner in one task"),
        ("tasks", "PrefectDbtRunner, one task per node"),
        ("plain", "plain dbtRunner in one task (again)"),
    ):
        try:
            result = run_child("node-tasks", {**dbt_options, "mode": mode}, budget, server_env)
        except StepSkipped as skipped:
            rows.append([label, str(skipped), "-", "-", "-", "-"])
            continue
        rows.append(
            [
                label,
                str(result["nodes"]),
                _seconds(result["dbt"]),
                _seconds(result["body_start"]),
                _seconds(result["total"]),
                _seconds(result["cpu"]),
            ]
        )
        print(f"node tasks {mode}: dbt {result['dbt']:.1f} s", flush=True)
    return rows


def _timings(named: list[tuple[str, float]]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in named)


def _optional_seconds(value: float | None) -> str:
    return _seconds(value) if value is not None else "-"


def report_scale(report: Report, points: list[ScalePoint], skipped: list[str]) -> None:
    rows = [
        [point.cells.get(column, "-") for column in SCALE_COLUMNS]
        for point in points
        if point.cells
    ]
    slowest_rows = [
        [
            point.label,
            _timings(point.slowest),
            _optional_seconds(point.test_seconds),
            _timings(point.slowest_tests),
        ]
        for point in points
        if point.slowest
    ]
    week_rows = [
        [point.label, _timings(point.week_slowest), _optional_seconds(point.week_test_seconds)]
        for point in points
        if point.week_slowest
    ]
    report.add(
        "## Scale: 365 days of history, 500 products, then one more week",
        "",
        markdown_table(SCALE_COLUMNS, rows),
        "",
        "- generate + land: simulate, write CSV and COPY into `raw` in one transaction "
        "(write_and_land_activity, what the generation flow runs) on an empty database; "
        "rows/s counts rows landed in the five raw tables.",
        "- dbt build: what the subflow runs, without Prefect tasks (the build_steps of "
        "churn.build.commands through run_dbt: `dbt test` of the sources, then `dbt build` with "
        "--full-refresh; 2 threads) in a fresh process on a copy of dbt/; full pipeline = "
        "generate + land + dbt build (the report reads marts and adds about a second).",
        "- week: the generation code lands the next week (as-of + 7), then the same dbt "
        "commands without --full-refresh, with the checks window the subflow sets (tests of "
        "the large tables read the new week's rows); `week total / full` compares land + "
        "build of the week with land + build of the history.",
        "- peak RSS: ru_maxrss of the step's own fresh process (PostgreSQL not counted).",
        *(f"- {line}" for line in skipped),
        _load_note(),
        "",
        "### Slowest dbt models in the full build (dbt's run_results timings, seconds)",
        "",
        markdown_table(
            ["orders", "5 slowest models", "all tests s", "3 slowest tests"], slowest_rows
        ),
        "",
        "### Slowest dbt models in the weekly incremental run",
        "",
        markdown_table(["orders", "5 slowest models", "all tests s"], week_rows),
        "",
    )
    for point in points:
        if point.node_tasks:
            report.add(
                f"## Per-node dbt tasks against one plain invocation, ~{point.label} orders "
                "(running Prefect server)",
                "",
                markdown_table(
                    [
                        "dbt in the flow",
                        "nodes",
                        "dbt s",
                        "flow body start s",
                        "process s",
                        "process CPU s",
                    ],
                    point.node_tasks,
                ),
                "",
                "- `dbt build` without --full-refresh on the already built warehouse (same "
                "as-of), in a flow in a fresh process with PREFECT_API_URL set; `dbt s` is the "
                "dbt call inside the flow body; `process CPU s` is the user + system time of that "
                "process (dbt's and Prefect's work in it; PostgreSQL and the server not counted).",
                "",
            )


# -- the targets -------------------------------------------------------------------------------

# (how ours runs, the least naive / ours ratio asked for), in the order run_ours_e2e runs them
E2E_TARGETS = (
    ("ephemeral Prefect server (ad hoc)", 10.0),
    ("running Prefect server (the ambition)", 20.0),
)
FULL_PIPELINE_TARGET_S = 15 * 60
WEEKLY_SHARE_TARGET = 0.10
PEAK_RSS_TARGET = 1024**3


def _verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def report_targets(
    report: Report, points: list[ScalePoint], ours: list[EndToEnd], naive: NaiveRun | str
) -> None:
    """Each target against what this run measured, and what holds back one that is not met."""
    rows = []
    limits = []
    timed = [run.seconds for run in ours if run.seconds is not None]
    for (how, least), run in zip(E2E_TARGETS, ours or [None] * len(E2E_TARGETS), strict=True):
        target = f"~100k orders, end to end, {how}: >= {least:.0f}x the naive pipeline"
        if run is None or run.seconds is None or not isinstance(naive, NaiveRun):
            why = naive if isinstance(naive, str) else "not measured"
            rows.append([target, why, "-"])
            continue
        ratio = naive.total / run.seconds
        rows.append([target, f"{ratio:.1f}x", _verdict(ratio >= least)])
        if ratio < least and not limits and len(timed) == len(E2E_TARGETS):
            smallest = points[0] if points else None
            dbt_part = (
                f"; the dbt build alone takes {smallest.full_dbt:.0f} s at ~{smallest.label} "
                "orders, one query or more per node however small the data"
                if smallest is not None and smallest.full_dbt is not None
                else ""
            )
            limits.append(
                f"- what holds ours back at ~100k orders: fixed costs. The two runs differ by "
                f"{timed[0] - timed[1]:.0f} s, the ephemeral server's start (see the fixed "
                f"costs){dbt_part}; the naive pipeline's time is mostly `dbt seed`."
            )
    largest = next((point for point in points if point.label == "10M"), None)
    if largest is None or largest.full_total is None:
        rows.append(["~10M orders: full pipeline <= 15 min", "not measured (--full)", "-"])
    else:
        minutes = largest.full_total / 60
        rows.append(
            [
                "~10M orders: full pipeline <= 15 min",
                f"{minutes:.1f} min",
                _verdict(largest.full_total <= FULL_PIPELINE_TARGET_S),
            ]
        )
    if largest is None or largest.week_total is None or largest.full_total is None:
        rows.append(["~10M orders: weekly run <= 10% of the full one", "not measured", "-"])
    else:
        share = largest.week_total / largest.full_total
        dbt_share = (largest.week_dbt or 0) / (largest.full_dbt or 1)
        rows.append(
            [
                "~10M orders: weekly run <= 10% of the full one",
                f"{share:.0%} (dbt alone {dbt_share:.0%})",
                _verdict(share <= WEEKLY_SHARE_TARGET),
            ]
        )
        smallest = points[0]
        if share > WEEKLY_SHARE_TARGET and smallest.week_dbt is not None:
            limits.append(
                f"- what holds the weekly run back at ~10M orders: of its {largest.week_dbt:.0f} s "
                f"of dbt, about {smallest.week_dbt:.0f} s is what a weekly run costs at "
                f"~{smallest.label} orders (dbt's start, the raw checks, one query per node and "
                "test), which does not shrink with the data; the rest is led by "
                f"{_timings(largest.week_slowest[:3])} s and {largest.week_test_seconds or 0:.0f} "
                "s of tests (node time on two threads)."
            )
    measured_rss = [rss for point in points for rss in point.peak_rss]
    if measured_rss:
        rows.append(
            [
                "peak RSS of our processes <= 1 GiB",
                _mib(max(measured_rss)),
                _verdict(max(measured_rss) <= PEAK_RSS_TARGET),
            ]
        )
    report.add(
        "## Targets",
        "",
        markdown_table(["target", "measured", "verdict"], rows),
        "",
        *limits,
        "",
    )


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the whole pipeline against a naive one, and its scale curve."
    )
    parser.add_argument(
        "--max-orders",
        choices=list(SCALE_POINTS),
        default="1M",
        help="largest point of the scale curve (default: %(default)s)",
    )
    parser.add_argument("--full", action="store_true", help="the same as --max-orders 10M")
    parser.add_argument(
        "--naive-seed-fraction",
        type=float,
        default=0.05,
        help="share of the naive rows loaded with dbt seed, extrapolated linearly "
        "(default: %(default)s)",
    )
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--scale-only",
        action="store_true",
        help="only the scale curve and the per-node tasks comparison (no fixed costs, "
        "no end-to-end runs)",
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=45,
        help="stop starting measurements after this long (default: %(default)s)",
    )
    parser.add_argument(
        "--step-timeout",
        type=float,
        default=1200,
        help="longest one measurement may run, in seconds (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "pipeline.md")
    # Internal: one measurement, run in a fresh child process.
    parser.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.full:
        args.max_orders = "10M"
    return args


def measure_end_to_end(
    report: Report,
    budget: Budget,
    env: dict[str, str],
    server: PrefectServer,
    work: Path,
    args: argparse.Namespace,
    url: str,
) -> tuple[list[EndToEnd], NaiveRun | str]:
    """Fixed costs, then ours twice and the naive pipeline at 10k customers."""
    measure_fixed_costs(report, budget, env, server, work)
    ours = [
        run_ours_e2e("ours, ephemeral Prefect server", budget, env, work, "ephemeral"),
        run_ours_e2e(
            "ours, running Prefect server",
            budget,
            {**env, "PREFECT_API_URL": server.api_url},
            work,
            "server",
        ),
    ]
    naive: NaiveRun | str = "skipped (--skip-naive)"
    if not args.skip_naive:
        naive = run_naive(url, work, E2E_CUSTOMERS, args.naive_seed_fraction)
    report_end_to_end(report, ours, naive)
    return ours, naive


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](json.loads(args.child_options))))
        return 0

    began = time.monotonic()
    budget = Budget(began + args.budget_minutes * 60, args.step_timeout)
    url = server_url()
    report = Report(args.output)
    report.add(
        "# Pipeline benchmark",
        "",
        *(f"- {line}" for line in machine_description(url)),
        f"- run at {dt.datetime.now().isoformat(timespec='seconds')}; seed {SEED}, {LOCALE}, "
        f"churn window {WINDOW} days",
        "",
    )
    labels = list(SCALE_POINTS)
    points = [
        ScalePoint(label, SCALE_POINTS[label])
        for label in labels[: labels.index(args.max_orders) + 1]
    ]
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as temp:
        work = Path(temp)
        work.chmod(0o755)  # the embedded PostgreSQL runs as another user when we are root
        env = base_env(work / "prefect_home")
        server = PrefectServer.start(work / "server_home", work / "prefect_server.log")
        ours: list[EndToEnd] = []
        naive: NaiveRun | str = "not measured (--scale-only)"
        try:
            if not args.scale_only:
                ours, naive = measure_end_to_end(report, budget, env, server, work, args, url)
            project = copy_dbt_project(DBT_PROJECT, work / "scale_project")
            skipped: list[str] = []
            for point in points:
                try:
                    measure_scale_point(
                        point,
                        url,
                        project,
                        budget,
                        env,
                        server if point.label == "100k" else None,
                        work,
                    )
                except StepSkipped as why:
                    skipped.append(f"~{point.label} orders: {why}")
                except RuntimeError as error:
                    first = str(error).splitlines()[0]
                    skipped.append(f"~{point.label} orders: not measured (failed: {first})")
            for label in labels[len(points) :]:
                skipped.append(f"~{label} orders: not measured (beyond --max-orders; --full)")
            report_scale(report, points, skipped)
            report_targets(report, points, ours, naive)
        finally:
            server.stop()
    report.add(f"Whole benchmark: {(time.monotonic() - began) / 60:.1f} minutes.")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
