"""End to end at the seed scale: ours against the naive pipeline, both measured whole.

The shop: 10k customers, 500 products, 365 days of history to 2026-11-23 (about 95k
orders). In one run, each in a fresh process:

- the naive pipeline, every step whole (bench/naive_pipeline.py: Faker loop writing
  CSV, `dbt seed` of every CSV, `dbt run`, `dbt test`, a pandas report);
- ours, `python flows/main.py --as-of 2026-11-23 --customers 10000 --products 500
  --history-days 365`, as a user runs it:
  1. the first run on a fresh clone: a new PREFECT_HOME, CHURN_DATA_DIR an empty
     folder and no warehouse block (the run starts the local Prefect server and a new
     embedded warehouse);
  2. a repeated ad hoc run: a `warehouse` SqlAlchemyConnector block (saved with
     `python -m blocks`) on a throwaway database, the same command run twice; the
     second run, which finds the local Prefect server running, is the figure;
  3. the same command after one past order line was corrected in raw: the run sees the
     change and rebuilds every model (what an old change costs, beside a weekly run);
  4. deployed style: the same warehouse, block and data folder, against a running
     `prefect server start`, plain and with `--dbt-node-tasks` (one Prefect task per
     dbt node, as the deployments run).

The ratios are naive / ours; the targets table judges them. Launch to the flow's first
log line is read from each run's output. Prints markdown and writes
bench/results/pipeline.md.

    uv run python bench/pipeline.py
    uv run python bench/pipeline.py --customers 1000     # a short smoke run

The server comes from BENCH_DATABASE_URL (default: postgres on 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    AS_OF,
    HISTORY_DAYS,
    PRODUCTS,
    PROJECT_ROOT,
    RESULTS_DIR,
    SEED_SCALE_CUSTOMERS,
    Finished,
    Session,
    StepSkipped,
    add_budget_arguments,
    bench_database,
    database_url,
    load_average,
    run_benchmark,
    run_env,
    run_process,
)
from bench.naive_pipeline import STEP_LABELS, NaiveRun, default_seed_fraction, measure_naive
from bench.report import Report, Target, markdown_table, mib, ratio_target, secs

PEAK_RSS_LIMIT = 1024**3
# naive / ours asked of each way ours runs
REPEATED_AD_HOC_GOAL = 10.0
FRESH_CLONE_GOAL = 4.0
NODE_TASKS_GOAL = 5.0
# The runs of ours, in the order they run.
FRESH_CLONE = "first run on a fresh clone (embedded warehouse)"
FIRST_AD_HOC = "ad hoc, first run with the block"
REPEATED_AD_HOC = "ad hoc, repeated (the same command again)"
CORRECTED_HISTORY = "ad hoc, after one past order line corrected in raw (rebuilds)"
# An outside edit of history, as a shop fixes a price: one line of an order two months
# before the reported week. The next run must see it and compute the marts again.
CORRECTION_SQL = f"""
update raw.order_items set unit_price = unit_price + 1
where order_id = (
    select min(order_id) from raw.orders where order_date = date '{AS_OF}' - 60
)
"""
NODE_TASKS = "running server, repeated, per-node dbt tasks"


@dataclass
class OursRun:
    """One `python flows/main.py` run; `finished` None when it was not measured."""

    label: str
    finished: Finished | None = None
    missing: str = "not measured"
    report_written: bool = False

    @property
    def seconds(self) -> float | None:
        return self.finished.seconds if self.finished else None

    def first_log_line(self) -> float | None:
        """Launch to the first log line of the flow run (Prefect's 'Beginning flow run')."""
        return self._line_with("| Flow run '")

    def body_log_line(self) -> float | None:
        """Launch to the flow body's own first line."""
        return self._line_with("Week ending")

    def _line_with(self, text: str) -> float | None:
        return self.finished.first_line(lambda line: text in line) if self.finished else None

    def note(self) -> str:
        """Which warehouse the run said it used, and whether it wrote its report."""
        if self.finished is None:
            return ""
        said = next((line for _, line in self.finished.lines if "Warehouse: " in line), "")
        warehouse = said.split("Warehouse: ", 1)[1].split(",", 1)[0] if said else "?"
        if warehouse.startswith("embedded"):
            warehouse = "embedded"
        lines = [line for _, line in self.finished.lines]
        build = (
            "full build"
            if any("(full refresh)" in line for line in lines)
            else "incremental build"
            if any("dbt build passed" in line for line in lines)
            else "no build line"
        )
        return f"warehouse: {warehouse}; {build}" + (
            "" if self.report_written else "; NO report file"
        )


def flows_main(customers: int, *extra: str) -> list[str]:
    return [
        sys.executable, str(PROJECT_ROOT / "flows" / "main.py"), "--as-of", AS_OF.isoformat(),
        "--customers", str(customers), "--products", str(PRODUCTS),
        "--history-days", str(HISTORY_DAYS), *extra,
    ]  # fmt: skip


def run_ours(session: Session, label: str, env: dict[str, str], command: Sequence[str]) -> OursRun:
    reports = Path(env["CHURN_REPORTS_DIR"])
    shutil.rmtree(reports, ignore_errors=True)
    try:
        finished = run_process(command, session.budget, env)
    except StepSkipped as skipped:
        return OursRun(label, missing=str(skipped))
    written = (reports / AS_OF.isoformat() / "report.txt").exists()
    print(f"ours, {label}: {finished.seconds:.1f} s", flush=True)
    return OursRun(label, finished, report_written=written)


def save_warehouse_block(session: Session, env: dict[str, str], database: str) -> None:
    """`python -m blocks` with WAREHOUSE_URL set, as a user creates the block."""
    empty = session.work / "empty.env"
    empty.touch()
    command = [sys.executable, "-m", "blocks", "--env-file", str(empty)]
    run_process(command, session.budget, {**env, "WAREHOUSE_URL": database_url(database)})


def stop_what_outlives_runs(session: Session, env: dict[str, str]) -> None:
    """Stop the embedded warehouse and the local Prefect server an ad hoc run left."""
    for module in ("churn.warehouse", "churn.settings.local_server"):
        run_process([sys.executable, "-m", module, "stop"], session.budget, env, check=False)


def measure_ours(session: Session, customers: int) -> list[OursRun]:
    """The fresh clone's first run, then the repeated and deployed-style runs."""
    work = session.work
    command = flows_main(customers)
    fresh = run_env(
        work / "fresh_home",
        CHURN_DATA_DIR=str(work / "fresh_data"),
        CHURN_REPORTS_DIR=str(work / "fresh_reports"),
    )
    (work / "fresh_data").mkdir()
    try:
        runs = [run_ours(session, FRESH_CLONE, fresh, command)]
    finally:
        # The embedded PostgreSQL and the local Prefect server outlive the run by design.
        stop_what_outlives_runs(session, fresh)
        shutil.rmtree(work / "fresh_data", ignore_errors=True)

    shared = {"CHURN_DATA_DIR": str(work / "data"), "CHURN_REPORTS_DIR": str(work / "reports")}
    with bench_database("pipeline") as warehouse:
        ad_hoc = run_env(work / "ad_hoc_home", **shared)
        save_warehouse_block(session, ad_hoc, warehouse.database)
        try:
            runs.append(run_ours(session, FIRST_AD_HOC, ad_hoc, command))
            runs.append(run_ours(session, REPEATED_AD_HOC, ad_hoc, command))
            with warehouse.connect(autocommit=True) as conn:
                conn.execute(CORRECTION_SQL)
            runs.append(run_ours(session, CORRECTED_HISTORY, ad_hoc, command))
        finally:
            stop_what_outlives_runs(session, ad_hoc)
        api_url = session.prefect_api_url()
        deployed = run_env(work / "deployed_home", PREFECT_API_URL=api_url, **shared)
        save_warehouse_block(session, deployed, warehouse.database)
        with_tasks = flows_main(customers, "--dbt-node-tasks")
        runs.append(run_ours(session, NODE_TASKS, deployed, with_tasks))
    return runs


def _ratio(naive: NaiveRun | str, seconds: float | None) -> str:
    if isinstance(naive, str) or seconds is None:
        return "-"
    ratio = f"{naive.total / seconds:,.1f}x"
    return f"{ratio} (extrapolated naive)" if naive.extrapolated else ratio


def report_end_to_end(
    report: Report, customers: int, runs: list[OursRun], naive: NaiveRun | str
) -> None:
    rows = [
        [
            run.label,
            secs(run.seconds) if run.finished else run.missing,
            secs(run.first_log_line()),
            secs(run.body_log_line()),
            mib(run.finished.peak_rss) if run.finished else "-",
            f"{run.finished.load:.1f}" if run.finished else "-",
            _ratio(naive, run.seconds),
            run.note(),
        ]
        for run in runs
    ]
    if isinstance(naive, str):
        rows.append(["naive pipeline", naive, "-", "-", "-", "-", "-", ""])
    else:
        rows.append(
            [
                "naive pipeline, every step (table below)",
                naive.total_label(),
                "-",
                "-",
                mib(max(naive.rss.values())),
                "-",
                "1.0x",
                f"{naive.orders:,} orders, {naive.raw_rows:,} raw rows",
            ]
        )
    headers = ["pipeline", "seconds", "first flow log line s", "flow body's first line s"]
    report.add(
        f"## End to end at {customers:,} customers, {PRODUCTS} products, "
        f"{HISTORY_DAYS} days to {AS_OF}",
        "",
        markdown_table([*headers, "peak RSS", "load at launch", "naive / ours", "note"], rows),
        "",
        "- seconds: launch of `python flows/main.py ...` to its exit; `first flow log line`: "
        "launch to the flow run's first log line ('Beginning flow run'); `flow body's first "
        "line`: launch to the flow's own first line ('Week ending ...').",
        "- peak RSS: the largest of the process and the processes it waited for (the "
        "ephemeral Prefect server); PostgreSQL and a running Prefect server not counted. "
        f"load at launch: the machine's 1-minute load average ({os.cpu_count()} cores).",
        "- ad hoc, repeated and running server: the same throwaway database, `warehouse` "
        "block and CHURN_DATA_DIR (dbt's parse kept between runs); the repeated run "
        "regenerates and replaces the reported week, then builds incrementally (nothing old "
        "changed: the change check reads one small table); after a past order line is "
        "corrected in raw the next run computes every model again (its log says why).",
        f"- load average (1, 5, 15 min) after these runs: {load_average()}",
        "",
    )
    if isinstance(naive, str):
        return
    report.add(
        "### The naive pipeline, step by step (each a process of its own)",
        "",
        markdown_table(
            ["naive step", "seconds", "peak RSS", "load at launch"],
            [
                [
                    STEP_LABELS[step],
                    naive.seed_label() if step == "dbt seed" else secs(value),
                    mib(naive.rss[step]),
                    f"{naive.loads[step]:.1f}",
                ]
                for step, value in naive.steps.items()
            ]
            + [["total", naive.total_label(), "-", "-"]],
        ),
        "",
        f"- naive report: {naive.report_text}",
        "",
    )


def targets(customers: int, runs: list[OursRun], naive: NaiveRun | str) -> list[Target]:
    """The end-to-end targets, judged from this run's figures."""
    by_label = {run.label: run for run in runs}

    def seconds(label: str) -> float | None:
        return by_label[label].seconds if label in by_label else None

    if isinstance(naive, str):
        naive_total, missing = None, naive
    elif naive.extrapolated:
        naive_total = None
        missing = f"not judged: the naive figure is extrapolated from {naive.seed_fraction:.0%}"
    else:
        naive_total, missing = naive.total, "not measured"
    scale = (
        "at the seed scale" if customers == SEED_SCALE_CUSTOMERS else f"at {customers:,} customers"
    )
    found = [
        ratio_target(
            f"repeated ad hoc run {scale}: >= {REPEATED_AD_HOC_GOAL:g}x the naive pipeline",
            REPEATED_AD_HOC_GOAL,
            seconds(REPEATED_AD_HOC),
            naive_total,
            missing,
        ),
        ratio_target(
            f"first run on a fresh clone {scale}: >= {FRESH_CLONE_GOAL:g}x the naive pipeline",
            FRESH_CLONE_GOAL,
            seconds(FRESH_CLONE),
            naive_total,
            missing,
        ),
        ratio_target(
            f"per-node dbt tasks run {scale}: >= {NODE_TASKS_GOAL:g}x the naive pipeline",
            NODE_TASKS_GOAL,
            seconds(NODE_TASKS),
            naive_total,
            missing,
        ),
    ]
    peaks = [run.finished.peak_rss for run in runs if run.finished]
    peak = max(peaks) if peaks else None
    found.append(
        Target(
            f"peak RSS of ours end to end {scale} <= 1 GiB",
            PEAK_RSS_LIMIT,
            False,
            peak,
            mib(peak) if peak else "",
        )
    )
    return found


def run(
    session: Session, report: Report, customers: int, naive_fraction: float | None, skip_naive: bool
) -> NaiveRun | None:
    """Measure both pipelines, add their tables and targets to `report`; the naive run."""
    fraction = default_seed_fraction(customers) if naive_fraction is None else naive_fraction
    naive: NaiveRun | str = "not measured (--skip-naive)"
    if not skip_naive:
        try:
            naive = measure_naive(session, customers, fraction)
        except RuntimeError as error:  # a failed or stopped step: ours is still measured
            naive = f"not measured ({str(error).splitlines()[0]})"
            print(f"naive: {error}", flush=True)
    runs = measure_ours(session, customers)
    report_end_to_end(report, customers, runs, naive)
    report.add_targets(*targets(customers, runs, naive))
    return naive if isinstance(naive, NaiveRun) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ours against the naive pipeline, end to end.")
    parser.add_argument("--customers", type=int, default=SEED_SCALE_CUSTOMERS)
    parser.add_argument(
        "--naive-seed-fraction",
        type=float,
        default=None,
        help="share of the naive rows loaded by dbt seed, the rest extrapolated "
        "(default: every row up to 10k customers)",
    )
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "pipeline.md")
    add_budget_arguments(parser, minutes=30, step_timeout=900)
    args = parser.parse_args(argv)

    def body(current: Session, report: Report) -> None:
        run(current, report, args.customers, args.naive_seed_fraction, args.skip_naive)

    title = "Pipeline benchmark: ours against the naive pipeline"
    return run_benchmark(args.output, title, args, body)


if __name__ == "__main__":
    raise SystemExit(main())
