"""What every benchmark shares: the shop, throwaway databases, child processes, the machine.

Every measurement runs in a fresh child process (`run_process`), so its wall time, its
CPU time and its peak RSS are its own: the peak RSS is the largest resident set of the
process or of any descendant it waited for, PostgreSQL not counted. A child run by
`run_child` reports it itself (`own_peak_rss`): wait4's figure never goes below the
benchmark's own peak at the launch, which Linux carries over into the child at exec.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bench.report import Report
from churn.settings import RunParameters
from churn.settings.prefect_server import PrefectServer, quiet_env
from churn.warehouse.connection import Warehouse, parse_warehouse_url

if TYPE_CHECKING:  # the simulation is imported by the children that use it
    from churn.simulation.plan import GenerationPlan
    from churn.simulation.state import LandedState

BENCH_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_ROOT.parent
DBT_PROJECT = PROJECT_ROOT / "dbt"
RESULTS_DIR = BENCH_ROOT / "results"
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# The shop every benchmark simulates: 365 days of history to AS_OF, 500 products.
AS_OF = dt.date(2026, 11, 23)
HISTORY_DAYS = 365
PRODUCTS = 500
SEED = 42
LOCALE = "en_US"
WINDOW = RunParameters().churn_window_days
RAW_TABLES = ("customers", "products", "orders", "order_items", "cancellations")
# The seed scale: 10k customers over 365 days, about 95k orders.
SEED_SCALE_CUSTOMERS = 10_000

RESULT_MARKER = "BENCH-RESULT "
PEAK_RSS_KEY = "own_peak_rss"
POLL_SECONDS = 0.02


def shop_plan(
    customers: int,
    *,
    history_days: int = HISTORY_DAYS,
    seed: int = SEED,
    state: LandedState | None = None,
    as_of: dt.date = AS_OF,
) -> GenerationPlan:
    """The generation plan of the benchmarks' shop (500 products, en_US) at `as_of`."""
    from churn.simulation.plan import plan_generation

    return plan_generation(
        state,
        as_of=as_of,
        seed=seed,
        customers=customers,
        products=PRODUCTS,
        history_days=history_days,
        locale=LOCALE,
    )


# -- the PostgreSQL server and throwaway databases -------------------------------------------


def server_url() -> str:
    """The PostgreSQL server to create bench databases on (BENCH_DATABASE_URL, or local)."""
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_SERVER_URL


def bench_warehouse(database: str) -> Warehouse:
    """A database of the bench server; credentials come from the environment, not argv."""
    server = parse_warehouse_url(server_url(), origin="bench")
    return server.with_database(database, origin=f"bench database {database}")


def database_url(database: str) -> str:
    """The bench server's URL (password included) for another database, for a block."""
    return urlsplit(server_url())._replace(path=f"/{database}").geturl()


@contextlib.contextmanager
def bench_database(label: str) -> Iterator[Warehouse]:
    """A fresh database named bench_<label>_<random>, dropped afterwards whatever happens."""
    admin = bench_warehouse("postgres")
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with admin.connect(autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield bench_warehouse(name)
    finally:
        with admin.connect(autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


# -- the machine ------------------------------------------------------------------------------


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def machine_description() -> list[str]:
    """One line each: processors, memory, Python, PostgreSQL, and how busy the machine is."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with bench_warehouse("postgres").connect(autocommit=True) as conn:
        row = conn.execute("show server_version").fetchone()
    postgres = row[0] if row else "?"
    return [
        f"cores: {os.cpu_count()}, RAM: {memory / 2**30:.1f} GiB, "
        f"{platform.system()} {platform.machine()}",
        f"Python {platform.python_version()}, PostgreSQL {postgres}",
        f"load average at start (1, 5, 15 min): {load_average()}",
    ]


# -- child processes ----------------------------------------------------------------------------


class StepSkipped(RuntimeError):
    """A step was not measured; the message says why (it goes into the table)."""


@dataclass
class Budget:
    """The wall-clock time the benchmark may still spend, and each step's limit."""

    deadline: float
    step_timeout: float

    @classmethod
    def of(cls, minutes: float, step_timeout: float) -> Budget:
        return cls(time.monotonic() + minutes * 60, step_timeout)

    def timeout(self) -> float:
        left = self.deadline - time.monotonic()
        if left < 10:
            raise StepSkipped("not measured (time budget spent)")
        return min(self.step_timeout, left)


@dataclass
class Finished:
    """A child process that exited: its times, peak RSS and output lines."""

    command: list[str]
    returncode: int
    seconds: float  # wall clock, launch to exit
    cpu: float  # user + system seconds of the process and the descendants it waited for
    peak_rss: int  # bytes
    load: float  # the machine's 1-minute load average at launch
    lines: list[tuple[float, str]]  # (seconds since launch, line), stdout and stderr merged

    def first_line(self, predicate: Callable[[str], bool]) -> float | None:
        """Seconds from launch to the first output line that satisfies `predicate`."""
        return next((at for at, line in self.lines if predicate(line)), None)

    def tail(self, count: int = 40) -> str:
        return "\n".join(line for _, line in self.lines[-count:])


def run_process(
    command: Sequence[str],
    budget: Budget,
    env: Mapping[str, str] | None = None,
    cwd: Path = PROJECT_ROOT,
    check: bool = True,
) -> Finished:
    """Run `command` in a session of its own; on timeout kill the whole session."""
    timeout = budget.timeout()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append((time.perf_counter() - started, raw.decode(errors="replace").rstrip()))

    # A daemon: a grandchild that keeps the pipe open must not keep the benchmark waiting.
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            seconds = time.perf_counter() - started
            break
        if time.perf_counter() - started > timeout:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            os.wait4(process.pid, 0)
            process.returncode = -signal.SIGKILL
            raise StepSkipped(f"not measured (over {timeout:.0f} s, stopped)")
        time.sleep(POLL_SECONDS)
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=5)
    if not reader.is_alive() and process.stdout is not None:
        process.stdout.close()
    finished = Finished(
        command=list(command),
        returncode=process.returncode,
        seconds=seconds,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss=usage.ru_maxrss * 1024,  # KiB on Linux
        load=load,
        lines=list(lines),
    )
    if check and finished.returncode != 0:
        name = " ".join(Path(part).name for part in command[:3])
        raise RuntimeError(f"{name} failed ({finished.returncode}):\n{finished.tail()}")
    return finished


ChildFunction = Callable[[Mapping[str, Any]], dict[str, Any]]


def run_child(
    script: Path,
    name: str,
    options: Mapping[str, Any],
    budget: Budget,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run `script`'s child function `name` in a fresh process; its result and usage.

    The child gets `spawned` (the epoch time just before launch) with its options; the
    result gets the process's wall time, CPU time, peak RSS (its own, see `own_peak_rss`)
    and the load at its launch: `process_seconds`, `process_cpu`, `peak_rss` and `load`.
    """
    options = {**options, "spawned": time.time()}
    command = [sys.executable, str(script), "--child", name, json.dumps(options)]
    finished = run_process(command, budget, env)
    for _, line in reversed(finished.lines):
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            break
    else:
        raise RuntimeError(f"child {name} printed no result:\n{finished.tail()}")
    peak_rss = int(result.pop(PEAK_RSS_KEY, finished.peak_rss))
    return {
        **result,
        "process_seconds": finished.seconds,
        "process_cpu": finished.cpu,
        "peak_rss": peak_rss,
        "load": finished.load,
    }


def own_peak_rss() -> int:
    """This process's peak resident set in bytes, or a waited descendant's if larger.

    VmHWM starts afresh at exec; ru_maxrss (getrusage's for the process itself, wait4's)
    keeps the peak the parent had when it launched the process.
    """
    descendants = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmHWM:"):
            return max(int(line.split()[1]) * 1024, descendants)
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, descendants)


def serve_child(argv: Sequence[str] | None, children: Mapping[str, ChildFunction]) -> bool:
    """In a child process (`--child NAME OPTIONS`): run the function, print its result."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "--child":
        return False
    result = children[args[1]](json.loads(args[2]))
    print(RESULT_MARKER + json.dumps({**result, PEAK_RSS_KEY: own_peak_rss()}), flush=True)
    return True


# -- the environment of our runs, and the session ---------------------------------------------


def run_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no Prefect or pipeline setting inherited, no telemetry."""
    inherited = [key for key in os.environ if key.startswith(("PREFECT_", "CHURN_", "TELEGRAM_"))]
    return quiet_env(
        drop=[*inherited, "WAREHOUSE_URL"],
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        PYTHONUNBUFFERED="1",
        **extra,
    )


def copy_dbt_project(source: Path, target: Path) -> Path:
    """A copy of a dbt project without its target/ and logs/ (no partial-parse state)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("target", "logs"))
    return target


@dataclass
class Session:
    """One benchmark run: a work folder, a time budget, a Prefect server started on demand."""

    work: Path
    budget: Budget
    server_start_seconds: float | None = None
    _server: PrefectServer | None = field(default=None, repr=False)

    def prefect_api_url(self) -> str:
        """A running `prefect server start` (services on, as deployed), started once."""
        if self._server is None:
            started = time.perf_counter()
            server = PrefectServer(self.work / "server_home", services=True).start()
            self._server = server
            server.wait_until_healthy(timeout=180)
            self.server_start_seconds = time.perf_counter() - started
        return self._server.api_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


@contextlib.contextmanager
def session(budget_minutes: float, step_timeout: float, prefix: str) -> Iterator[Session]:
    with tempfile.TemporaryDirectory(prefix=prefix) as temp:
        work = Path(temp)
        work.chmod(0o755)  # the embedded PostgreSQL runs as another user when we are root
        current = Session(work, Budget.of(budget_minutes, step_timeout))
        try:
            yield current
        finally:
            current.stop()


def add_budget_arguments(parser: Any, minutes: float, step_timeout: float = 1200) -> None:
    """The options every benchmark takes: its time budget and one step's limit."""
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=minutes,
        help="stop starting measurements after this long (default: %(default)s)",
    )
    parser.add_argument(
        "--step-timeout",
        type=float,
        default=step_timeout,
        help="longest one measurement may run, in seconds (default: %(default)s)",
    )


def new_report(output: Path, title: str) -> Report:
    """A results file that starts with its title, the machine and the time of the run."""
    report = Report(output)
    report.add(
        f"# {title}",
        "",
        *(f"- {line}" for line in machine_description()),
        f"- run at {dt.datetime.now().isoformat(timespec='seconds')}; shop: {HISTORY_DAYS} days "
        f"of history to {AS_OF}, {PRODUCTS} products, seed {SEED}, {LOCALE}, churn window "
        f"{WINDOW} days",
        "",
    )
    return report


def run_benchmark(
    output: Path, title: str, args: Any, body: Callable[[Session, Report], object]
) -> int:
    """One benchmark on its own: a session, its report, the targets, the time it took."""
    began = time.monotonic()
    report = new_report(output, title)
    with session(args.budget_minutes, args.step_timeout, f"bench_{output.stem}_") as current:
        body(current, report)
    report.finish((time.monotonic() - began) / 60)
    print(f"written to {output}")
    return 0
