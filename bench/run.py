"""Run both benchmarks, one after the other: generation, then the whole pipeline.

    uv run python bench/run.py           # up to 1M orders (a run of about half an hour)
    uv run python bench/run.py --full    # up to 10M orders

Each writes its own table: bench/results/generation.md and bench/results/pipeline.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `flows` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import generation, pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the generation and pipeline benchmarks.")
    parser.add_argument("--full", action="store_true", help="scale up to 10M orders")
    args = parser.parse_args(argv)
    customers = ["10000", "100000", "1000000"] if args.full else ["10000", "100000"]
    status = generation.main(["--customers", *customers])
    return status or pipeline.main(["--full"] if args.full else [])


if __name__ == "__main__":
    raise SystemExit(main())
