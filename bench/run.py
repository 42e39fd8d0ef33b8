"""Run every benchmark in one session, then one table of all the targets.

    uv run python bench/run.py           # scale curve to ~1M orders
    uv run python bench/run.py --full    # scale curve to ~10M orders, generation to 1M customers
    uv run python bench/run.py --quick   # a smoke run: 500 customers, scale curve to ~100k,
                                         # the customer model's quick sizes

The benchmarks share one work folder, one time budget and one running Prefect server;
the naive pipeline is measured once (bench/pipeline.py) and its landing steps are reused
by bench/generation.py. The import of a shop's exports (bench/importing.py) runs at
~1M orders (--quick: 500 customers); the customer model (bench/prediction_accuracy.py,
bench/prediction_speed.py) at its own sizes. Each writes its own file under
bench/results/; the targets of all of them go to bench/results/targets.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    fixed_costs,
    generation,
    importing,
    node_tasks,
    pipeline,
    prediction_accuracy,
    prediction_speed,
    scale,
)
from bench.common import (
    RESULTS_DIR,
    SEED_SCALE_CUSTOMERS,
    add_budget_arguments,
    new_report,
    session,
)
from bench.report import Report, Target

T = TypeVar("T")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark, then all the targets.")
    parser.add_argument("--full", action="store_true", help="scale up to ~10M orders")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 500 customers, scale to ~100k orders"
    )
    add_budget_arguments(parser, minutes=120)
    args = parser.parse_args(argv)
    began = time.monotonic()
    shop = 500 if args.quick else SEED_SCALE_CUSTOMERS
    customers = [shop, 10 * shop, 100 * shop] if args.full else [shop, 10 * shop]
    largest = "100k" if args.quick else "10M" if args.full else "1M"
    targets: list[Target] = []

    def part(name: str, title: str, body: Callable[[Report], T]) -> T:
        started = time.monotonic()
        report = new_report(RESULTS_DIR / f"{name}.md", title)
        result = body(report)
        report.finish((time.monotonic() - started) / 60)
        targets.extend(report.targets)
        return result

    with session(args.budget_minutes, args.step_timeout, "bench_all_") as current:
        part("fixed_costs", "Fixed costs benchmark", lambda r: fixed_costs.run(current, r))
        naive = part(
            "pipeline",
            "Pipeline benchmark: ours against the naive pipeline",
            lambda r: pipeline.run(current, r, shop, None, False),
        )
        part(
            "generation",
            "Generation benchmark",
            lambda r: generation.run(current, r, customers, ["streamed"], 1, None, naive=naive),
        )
        part(
            "node_tasks",
            "Per-node dbt tasks benchmark",
            lambda r: node_tasks.run(current, r, shop),
        )
        part("scale", "Scale benchmark", lambda r: scale.run(current, r, largest))
        imported = shop if args.quick else importing.DEFAULT_CUSTOMERS
        part("importing", importing.TITLE, lambda r: importing.measure(current, r, imported))
        shops = prediction_accuracy.QUICK_SHOPS if args.quick else prediction_accuracy.SHOPS
        part(
            "prediction_accuracy",
            prediction_accuracy.TITLE,
            lambda r: prediction_accuracy.run(current, r, *shops),
        )
        sizes = prediction_speed.QUICK_SIZES if args.quick else prediction_speed.SIZES
        part(
            "prediction_speed",
            prediction_speed.TITLE,
            lambda r: prediction_speed.run(current, r, sizes),
        )

    summary = new_report(RESULTS_DIR / "targets.md", "Every benchmark's targets")
    summary.add_targets(*targets)
    summary.finish((time.monotonic() - began) / 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
