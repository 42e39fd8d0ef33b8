"""Running dbt: in one plain invocation, or through prefect-dbt with a task per node.

dbt gets its credentials from environment variables set only for the invocation (see
dbt/profiles.yml); nothing with a password is written to disk. Each invocation has a
target folder of its own (two runs at once, or a test, never share run_results.json or
a manifest), seeded with the last parse so that partial parsing still applies; its
results are read from the invocation's own return value.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.settings.environment import temporary_environment
from churn.settings.paths import DBT_PROJECT_DIR, data_dir
from churn.warehouse.connection import Warehouse

PARTIAL_PARSE_FILE = "partial_parse.msgpack"
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
MAX_MESSAGE_CHARS = 200


class DbtBuildFailed(RuntimeError):
    """dbt finished with failing models or tests (`rows`: each node's result, if known)."""

    def __init__(self, message: str, rows: list[NodeResult] | None = None) -> None:
        super().__init__(message)
        self.rows: list[NodeResult] = list(rows or [])


@dataclass(frozen=True)
class NodeResult:
    """One dbt node's outcome, as the build's table artifact shows it."""

    node: str
    type: str
    status: str
    seconds: float
    message: str

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def as_row(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "type": self.type,
            "status": self.status,
            "seconds": self.seconds,
            "message": self.message,
        }


def node_results(invocation_result: Any) -> list[NodeResult]:
    """Every node of an invocation, from dbt's own result object (not run_results.json)."""
    results = getattr(getattr(invocation_result, "result", None), "results", None) or []
    rows = []
    for result in results:
        unique_id = result.node.unique_id
        rows.append(
            NodeResult(
                node=unique_id.split(".")[-1] if unique_id.startswith("model.") else unique_id,
                type=unique_id.split(".")[0],
                status=str(result.status),
                seconds=round(result.execution_time or 0.0, 3),
                message=(result.message or "")[:MAX_MESSAGE_CHARS],
            )
        )
    return rows


def parse_cache_dir() -> Path:
    """Where the last parse of the project is kept between invocations."""
    return data_dir() / "dbt"


@contextlib.contextmanager
def invocation_folder() -> Iterator[Path]:
    """A target folder for one invocation, seeded with the last parse and removed after.

    The parse it leaves is kept for the next invocation (replaced atomically: two runs
    at once each keep a whole file).
    """
    cache = parse_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="target-", dir=cache))
    try:
        kept = cache / PARTIAL_PARSE_FILE
        if kept.exists():
            shutil.copy2(kept, folder / PARTIAL_PARSE_FILE)
        yield folder
        produced = folder / PARTIAL_PARSE_FILE
        if produced.exists():
            staged = folder / f"{PARTIAL_PARSE_FILE}.keep"
            shutil.copy2(produced, staged)
            os.replace(staged, kept)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def location_args(target: Path, project_dir: Path = DBT_PROJECT_DIR) -> list[str]:
    """Where dbt finds the project and writes its target folder and log (not in the tree)."""
    return [
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target-path",
        str(target),
        "--log-path",
        str(parse_cache_dir() / "logs"),
    ]


def _raise_on_failure(args: list[str], success: bool, rows: list[NodeResult], error: Any) -> None:
    if success:
        return
    what = "dbt raw checks" if args[0] == "test" else f"dbt {args[0]}"
    failures = [row.node for row in rows if row.failed]
    if failures:
        raise DbtBuildFailed(f"{what} failed: " + ", ".join(failures), rows)
    raise DbtBuildFailed(f"{what} failed: {error or 'see the dbt log'}", rows)


class DbtSession:
    """dbt invocations on one warehouse that share a target folder and one parse.

    The raw checks and the build are two invocations; parsed once, with the vars they
    share, the second does not load the project again (each load of even a partial
    parse costs seconds). Use it as a context manager.
    """

    def __init__(self, warehouse: Warehouse, project_dir: Path = DBT_PROJECT_DIR) -> None:
        self.warehouse = warehouse
        self.project_dir = project_dir
        self._stack = contextlib.ExitStack()
        self._target: Path | None = None
        self._manifest: Any = None
        self._parsed_vars: str | None = None

    def __enter__(self) -> DbtSession:
        self._stack.enter_context(temporary_environment(self.warehouse.dbt_env()))
        self._target = self._stack.enter_context(invocation_folder())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    @property
    def target(self) -> Path:
        assert self._target is not None, "use the session as a context manager"
        return self._target

    def location(self) -> list[str]:
        return location_args(self.target, self.project_dir)

    def manifest(self, args: list[str]) -> Any:
        """The project parsed with the vars of `args` (once per set of vars)."""
        from dbt.cli.main import dbtRunner

        given = args[args.index("--vars") + 1] if "--vars" in args else ""
        if self._manifest is None or given != self._parsed_vars:
            vars_args = ["--vars", given] if given else []
            parsed = dbtRunner().invoke(["parse", "--quiet", *vars_args, *self.location()])
            _raise_on_failure(["parse"], parsed.success, [], parsed.exception)
            self._manifest, self._parsed_vars = parsed.result, given
        return self._manifest

    def run(self, args: list[str]) -> list[NodeResult]:
        """One dbt command without per-node Prefect tasks; raises naming what failed."""
        from dbt.cli.main import dbtRunner

        runner = dbtRunner(manifest=self.manifest(args))
        result = runner.invoke([*args, "--quiet", *self.location()])
        rows = node_results(result)
        _raise_on_failure(args, result.success, rows, result.exception)
        return rows

    def run_with_node_tasks(self, args: list[str]) -> list[NodeResult]:
        """dbt through prefect-dbt: each model, seed and test becomes a Prefect task."""
        from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

        settings = PrefectDbtSettings(
            project_dir=self.project_dir, profiles_dir=self.project_dir, target_path=self.target
        )
        runner = PrefectDbtRunner(
            manifest=self.manifest(args), settings=settings, raise_on_failure=False
        )
        try:
            result = runner.invoke([*args, "--log-path", str(parse_cache_dir() / "logs")])
        except ValueError as error:  # dbt could not run at all (e.g. a compilation error)
            raise DbtBuildFailed(str(error)) from None
        rows = node_results(result)
        _raise_on_failure(args, result.success, rows, result.exception)
        return rows


def run_dbt(
    warehouse: Warehouse, args: list[str], project_dir: Path = DBT_PROJECT_DIR
) -> list[NodeResult]:
    """One dbt command in a session of its own, without per-node Prefect tasks."""
    with DbtSession(warehouse, project_dir) as session:
        return session.run(args)


def run_dbt_with_node_tasks(
    warehouse: Warehouse, args: list[str], project_dir: Path = DBT_PROJECT_DIR
) -> list[NodeResult]:
    """One dbt command in a session of its own, each node a Prefect task."""
    with DbtSession(warehouse, project_dir) as session:
        return session.run_with_node_tasks(args)


def parse_project(warehouse: Warehouse | None = None) -> None:
    """Parse the project and keep the parse, so the next invocation starts from it."""
    from dbt.cli.main import dbtRunner

    env = warehouse.dbt_env() if warehouse is not None else {}
    with temporary_environment(env), invocation_folder() as target:
        result = dbtRunner().invoke(["parse", "--quiet", *location_args(target)])
    _raise_on_failure(["parse"], result.success, [], result.exception)
