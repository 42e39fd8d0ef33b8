"""`python -m churn.build parse`: parse the dbt project once and keep the parse.

The Docker image runs it at build time, so a run's first dbt invocation starts from a
parse instead of parsing the whole project.
"""

from __future__ import annotations

from churn.build.invocation import parse_cache_dir, parse_project
from churn.settings.command_line import OneLineArgumentParser


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m churn.build", description=__doc__)
    parser.add_argument("command", choices=("parse",))
    parser.parse_args(argv)
    parse_project()
    print(f"dbt project parsed; the parse is kept in {parse_cache_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
