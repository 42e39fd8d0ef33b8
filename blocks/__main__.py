"""`python -m blocks`: create or update the pipeline's Prefect blocks from `.env`.

    python -m blocks                  # save the blocks configured in .env / the environment
    python -m blocks --check          # prove the saved blocks work (SELECT 1, getMe)
    python -m blocks --missed-run-alert [--deadline-minutes 120]
                                      # alert the chat when a weekly run does not complete

Settings come from `.env` (see `.env.example`); real environment variables override the
file. Every setting is validated before anything is saved. Exit codes: 0 done, 1 a save
or a check failed, 2 bad input (nothing saved). No secret is ever printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from blocks.missed_run import DEFAULT_DEADLINE, create_missed_run_alert
from blocks.registration import (
    TELEGRAM_BOT_TOKEN,
    TELEGRAM_CHAT_ID,
    WAREHOUSE_URL,
    BlockSettings,
    CheckResult,
    InvalidSetting,
    build_telegram_block,
    build_warehouse_block,
    check_telegram_block,
    check_warehouse_block,
    read_environment,
    save_block,
    settings_from_values,
    validate_block_name,
)
from churn.redaction import describe_error
from churn.settings.command_line import EXIT_BAD_INPUT, OneLineArgumentParser
from churn.settings.local_server import choose_server, prefect_api

PROG = "python -m blocks"
DEFAULT_ENV_FILE = Path(".env")
EXIT_OK = 0
EXIT_FAILED = 1


def _block_name(value: str) -> str:
    try:
        return validate_block_name(value)
    except InvalidSetting as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """The command line: block names, the env file, and --check."""
    parser = OneLineArgumentParser(
        prog=PROG,
        description=(
            "Create or update the pipeline's Prefect blocks (a SqlAlchemyConnector for the "
            "warehouse, a TelegramBot for the report) from .env and the environment, or "
            "check the saved blocks with --check."
        ),
        epilog=(
            f"Settings: {WAREHOUSE_URL} (postgresql://user:password@host:5432/database), "
            f"{TELEGRAM_BOT_TOKEN}, {TELEGRAM_CHAT_ID}, TELEGRAM_API_URL (optional). A block "
            "whose settings are all empty is skipped. Exit codes: 0 done, 1 a save or check "
            "failed, 2 bad input (nothing saved)."
        ),
    )
    parser.add_argument(
        "--warehouse-block",
        default="warehouse",
        type=_block_name,
        metavar="NAME",
        help="name of the SqlAlchemyConnector block (default: %(default)s)",
    )
    parser.add_argument(
        "--telegram-block",
        default="telegram",
        type=_block_name,
        metavar="NAME",
        help="name of the TelegramBot block (default: %(default)s)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="file of KEY=value settings (default: .env in the current directory, if any)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="save nothing: load both blocks and prove them (SELECT 1 on the warehouse, "
        "getMe on the bot); exit 1 if either is wrong (no Telegram block is fine: reports "
        "are then dry runs)",
    )
    parser.add_argument(
        "--missed-run-alert",
        action="store_true",
        help="create or update the automation that tells the Telegram block's chat when a "
        "run of a deployment of prefect.yaml has not completed within the deadline of "
        "being due",
    )
    parser.add_argument(
        "--deadline-minutes",
        type=int,
        default=int(DEFAULT_DEADLINE.total_seconds() // 60),
        metavar="N",
        help="with --missed-run-alert: minutes a due run has to complete (default: %(default)s)",
    )
    return parser


def _print_error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _fail(message: str, code: int) -> int:
    _print_error(message)
    return code


def _resolve_env_file(env_file: Path | None) -> tuple[Path | None, str | None]:
    """The file to read and, when there is none, a note saying so (or an error if it was named)."""
    if env_file is not None:
        if not env_file.is_file():
            raise InvalidSetting(f"--env-file {env_file}: no such file")
        return env_file, None
    if DEFAULT_ENV_FILE.is_file():
        return DEFAULT_ENV_FILE, None
    return None, "no .env file here: reading settings from the environment only"


def register_blocks(args: argparse.Namespace) -> int:
    """Validate every setting, then save the configured blocks and say what happened."""
    try:
        env_file, note = _resolve_env_file(args.env_file)
        settings: BlockSettings = settings_from_values(read_environment(env_file, os.environ))
    except InvalidSetting as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    if settings.warehouse is None and settings.telegram is None:
        return _fail(
            f"nothing to save: set {WAREHOUSE_URL} and/or {TELEGRAM_BOT_TOKEN} with "
            f"{TELEGRAM_CHAT_ID} in .env (see .env.example) or in the environment",
            EXIT_BAD_INPUT,
        )
    if note:
        print(note)
    secrets = settings.secrets()

    # Build both blocks before saving either, so a block that cannot even be built
    # leaves nothing half-saved.
    saves: list[tuple[str, Callable[[], None], str]] = []
    try:
        if settings.warehouse is not None:
            warehouse_block = build_warehouse_block(settings.warehouse)
            password_note = ", password stored as a secret" if settings.warehouse.password else ""
            saves.append(
                (
                    "warehouse",
                    lambda: save_block(warehouse_block, args.warehouse_block),
                    f"saved SqlAlchemyConnector block '{args.warehouse_block}' "
                    f"({settings.warehouse.display_url()}{password_note})",
                )
            )
        if settings.telegram is not None:
            telegram_block = build_telegram_block(settings.telegram)
            api = settings.telegram.api_base_url or "Telegram's Bot API"
            saves.append(
                (
                    "telegram",
                    lambda: save_block(telegram_block, args.telegram_block),
                    f"saved TelegramBot block '{args.telegram_block}' "
                    f"(chat {settings.telegram.chat_id}, {api}, token stored as a secret)",
                )
            )
    except Exception as error:
        return _fail(f"invalid settings: {describe_error(error, secrets)}", EXIT_BAD_INPUT)

    if settings.warehouse is None:
        print(f"warehouse: skipped, {WAREHOUSE_URL} is not set")
    if settings.telegram is None:
        print(f"telegram: skipped, {TELEGRAM_BOT_TOKEN} and {TELEGRAM_CHAT_ID} are not set")
    failures = 0
    for label, save, done in saves:
        try:
            save()
        except Exception as error:
            # Prefect's HTTP errors can quote the request body, i.e. the secret itself.
            failures += 1
            _print_error(f"{label}: could not save the block: {describe_error(error, secrets)}")
        else:
            print(f"{label}: {done}")
    return EXIT_FAILED if failures else EXIT_OK


def check_blocks(args: argparse.Namespace) -> int:
    """Prove both saved blocks; one line each, exit 1 if either is wrong."""
    checks: list[tuple[str, str, Callable[[str], CheckResult]]] = [
        ("warehouse", args.warehouse_block, check_warehouse_block),
        ("telegram", args.telegram_block, check_telegram_block),
    ]
    failures = 0
    for label, name, check in checks:
        try:
            result = check(name)
        except Exception as error:
            # Loading can fail before any secret is known (server down); nothing to scrub
            # beyond what describe_error keeps: the first line of the message.
            result = CheckResult(False, f"cannot load the block: {describe_error(error, [])}")
        status = "ok" if result.ok else "FAILED"
        print(f"{label} block '{name}': {status}, {result.detail}")
        failures += not result.ok
    return EXIT_FAILED if failures else EXIT_OK


def create_alert(args: argparse.Namespace) -> int:
    """Create or update the missed-run automation and its notification block."""
    if args.deadline_minutes < 1:
        return _fail("--deadline-minutes must be at least 1", EXIT_BAD_INPUT)
    try:
        name, deployments = create_missed_run_alert(
            args.telegram_block, dt.timedelta(minutes=args.deadline_minutes)
        )
    except LookupError as error:
        return _fail(str(error), EXIT_FAILED)
    except Exception as error:
        return _fail(f"could not create the alert: {describe_error(error, [])}", EXIT_FAILED)
    print(
        f"automation '{name}': a message to the chat of block '{args.telegram_block}' when a "
        f"run of {', '.join(deployments)} has not completed {args.deadline_minutes} minutes "
        "after it was due"
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        # the blocks go where ad hoc runs will look for them: the running local server
        with prefect_api(choose_server(start=False).api_url):
            if args.missed_run_alert:
                return create_alert(args)
            return check_blocks(args) if args.check else register_blocks(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    raise SystemExit(main())
