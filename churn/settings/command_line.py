"""The command lines: `python flows/main.py`'s options, built from `RunParameters`.

One option per field, with the field's description and default: the command line, the
flows' signatures and the Prefect UI's form cannot drift apart. Bad input exits with
one line (status 2) before any work starts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NoReturn

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from churn.settings.parameters import RunParameters, describe_validation_error

PROG = "python flows/main.py"
EXIT_BAD_INPUT = 2
# Ad hoc runs leave per-node dbt tasks off: their cost (about 0.2 s a node, 20 s for a
# small build) buys a view that a terminal does not show; deployments keep them on.
AD_HOC_DEFAULTS: dict[str, Any] = {"dbt_node_tasks": False}


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argument parser whose usage errors (an unknown option, `--customers ten`) are
    one line, like every other error of the project's commands; argparse's own prints
    the whole usage first, a dozen lines around the one that says what is wrong."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def run_subcommand(
    prog: str,
    description: str,
    commands: Mapping[str, Callable[[], int]],
    argv: Sequence[str] | None,
) -> int:
    """A command line of a few verbs (`url`, `stop`, ...): parse one, run it, its exit code."""
    parser = OneLineArgumentParser(prog=prog, description=description)
    parser.add_argument("command", choices=tuple(commands))
    return commands[parser.parse_args(argv).command]()


def stopped(was_running: bool) -> int:
    """Say whether a `stop` stopped something; always a success."""
    print("stopped" if was_running else "not running")
    return 0


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_option(parser: argparse.ArgumentParser, name: str, field: FieldInfo) -> None:
    default = AD_HOC_DEFAULTS.get(name, field.default)
    help_text = (field.description or "").rstrip(".")
    annotation = field.annotation
    if annotation is bool:
        help_text += f" (default: {'on' if default else 'off'}"
        help_text += ", on in the deployments)" if name in AD_HOC_DEFAULTS else ")"
        parser.add_argument(
            _option(name), action=argparse.BooleanOptionalAction, default=default, help=help_text
        )
        return
    kwargs: dict[str, Any] = {"default": default}
    if annotation in (dt.date, dt.date | None):
        kwargs.update(type=_iso_date, metavar="YYYY-MM-DD")
    elif typing.get_origin(annotation) is Literal:
        kwargs.update(choices=typing.get_args(annotation))
    elif annotation is int:
        kwargs.update(type=int, metavar="N")
    else:
        kwargs.update(metavar="NAME")
    if default is not None:
        help_text += " (default: %(default)s)"
    parser.add_argument(_option(name), help=help_text, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="Land the shop's new activity, build the dbt marts and send the weekly "
        "churn report. Without blocks it uses an embedded PostgreSQL and prints the report "
        "(a dry run).",
    )
    for name, field in RunParameters.model_fields.items():
        _add_option(parser, name, field)
    return parser


def parse_run_parameters(argv: Sequence[str] | None = None) -> RunParameters:
    """Validated run parameters from the command line (exit 2 with one line if bad)."""
    parser = build_parser()
    values = vars(parser.parse_args(argv))
    try:
        return RunParameters(**values)
    except ValidationError as error:
        parser.exit(EXIT_BAD_INPUT, f"{PROG}: error: {describe_validation_error(error)}\n")
