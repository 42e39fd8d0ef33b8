"""`python -m churn.warehouse url|psql|stop`: open or stop the embedded warehouse."""

from __future__ import annotations

import subprocess

from churn.settings.command_line import run_subcommand, stopped
from churn.warehouse.embedded import embedded_warehouse, psql_command, stop_embedded


def _url() -> int:
    print(embedded_warehouse().display_url())
    return 0


def _psql() -> int:
    return subprocess.call(psql_command(embedded_warehouse()))


def main(argv: list[str] | None = None) -> int:
    return run_subcommand(
        "python -m churn.warehouse",
        "The embedded warehouse of ad hoc runs: its connection string (no password: trust "
        "authentication on a Unix socket), psql on it, or stop it.",
        {"url": _url, "psql": _psql, "stop": lambda: stopped(stop_embedded())},
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
