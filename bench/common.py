"""Helpers shared by the benchmarks: the machine, throwaway databases, child runs, tables."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from churn.warehouse.connection import Warehouse, parse_warehouse_url

BENCH_ROOT = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_ROOT / "results"
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """The PostgreSQL server to create bench databases on (BENCH_DATABASE_URL, or local)."""
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_SERVER_URL


@contextlib.contextmanager
def bench_database(url: str, label: str) -> Iterator[Warehouse]:
    """A fresh database named bench_<label>_<random>, dropped afterwards whatever happens."""
    admin = dataclasses.replace(parse_warehouse_url(url, origin="bench"), database="postgres")
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with admin.connect(autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield dataclasses.replace(admin, database=name, origin=f"bench database {name}")
    finally:
        with admin.connect(autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def machine_description(url: str) -> list[str]:
    """One line each: processors, memory, Python, PostgreSQL, and how busy the machine is."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    admin = dataclasses.replace(parse_warehouse_url(url, origin="bench"), database="postgres")
    with admin.connect(autocommit=True) as conn:
        postgres = conn.execute("show server_version").fetchone()[0]
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"cores: {os.cpu_count()}, RAM: {memory / 2**30:.1f} GiB, "
        f"{platform.system()} {platform.machine()}",
        f"Python {platform.python_version()}, PostgreSQL {postgres}",
        # Other work on the machine slows every figure: the load says how much there was.
        f"load average at start (1, 5, 15 min): {load}",
    ]


def run_child(script: Path, arguments: Sequence[str]) -> dict[str, object]:
    """Run `script` in a fresh Python process; it must print one JSON object last.

    A fresh process per measurement makes its peak RSS that measurement's alone.
    """
    completed = subprocess.run(
        [sys.executable, str(script), *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{script.name} {' '.join(arguments)} failed ({completed.returncode}):\n"
            f"{completed.stderr[-4000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table, numbers right-aligned."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    numeric = [
        all(_looks_numeric(row[i]) for row in cells) if cells else False
        for i in range(len(headers))
    ]

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
