"""`python -m churn.warehouse url|psql|stop`: open or stop the embedded warehouse."""

from __future__ import annotations

import subprocess

from churn.settings.command_line import OneLineArgumentParser
from churn.warehouse.embedded import embedded_warehouse, psql_command, stop_embedded


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(
        prog="python -m churn.warehouse",
        description="The embedded warehouse of ad hoc runs: its connection string (no "
        "password: trust authentication on a Unix socket), psql on it, or stop it.",
    )
    parser.add_argument("command", choices=("url", "psql", "stop"))
    command = parser.parse_args(argv).command
    if command == "stop":
        print("stopped" if stop_embedded() else "not running")
        return 0
    warehouse = embedded_warehouse()
    if command == "url":
        print(warehouse.display_url())
        return 0
    return subprocess.call(psql_command(warehouse))


if __name__ == "__main__":
    raise SystemExit(main())
