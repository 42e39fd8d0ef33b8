"""What the Prefect UI shows of the Docker deployment and its runs, read as a person
reads it: headless Chromium (the system's, /usr/bin/chromium; Playwright never downloads
a browser here) driven by Playwright, against the server of the `docker_deployment`
fixture, whose two runs (a good week, a week a dbt test stopped) it reuses.

Every check reads text on the page, not only that it loaded. Every page is saved as a
screenshot under CHURN_UI_SCREENSHOTS (default: a temporary folder; the path is
printed). The pages are those of Prefect's default UI (under /v2), in the shop's time
zone, as a reader in São Paulo sees them.

Skips with the reason printed without Chromium or Playwright (and without what the
Docker deployment test needs); under CI (CI=true) it fails instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.util
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from churn.build.invocation import FAILED_STATUSES
from churn.report.formatting import format_date, format_int, format_percent
from churn.report.labels import labels_for
from tests.availability import unavailable
from tests.docker_deployment import (
    AS_OF,
    FAILING_CHECK,
    DockerDeployment,
    declared_parameters,
    prefect_client,
)
from tests.session_notes import DOCKER_DEPLOYMENT, note

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("CHURN_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # runs as root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOP_TIME_ZONE = "America/Sao_Paulo"
PAGE_TIMEOUT_SECONDS = 30.0
SUBFLOWS = (
    "generate-shop-activity",
    "build-warehouse-models",
    "predict-customer-churn",
    "send-churn-report",
)
# The tasks each subflow makes (dbt's are one per model and test: checked by count).
SUBFLOW_TASKS = {
    "generate-shop-activity": ("plan-generation", "simulate-and-land"),
    "predict-customer-churn": ("fit-customer-model", "score-customers", "store-predictions"),
    "send-churn-report": ("read-marts", "deliver-to-telegram", "publish-artifacts"),
}
LOCALE = "pt_BR"  # the deployment's


@pytest.fixture(scope="session", autouse=True)
def chromium() -> Path:
    """The browser and its driver, checked before the Docker deployment's minutes are
    spent (an autouse session fixture is set up before the other session fixtures)."""
    if not CHROMIUM.is_file():
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    if importlib.util.find_spec("playwright") is None:
        unavailable("the playwright package is missing: uv sync (it is a dev dependency)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    """Headless Chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("CHURN_UI_SCREENSHOTS")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {folder}")
    note(DOCKER_DEPLOYMENT, f"UI screenshots: {folder}")
    return folder


@dataclass
class Ui:
    """One browser page on the server's UI, with text checks and screenshots."""

    page: Any
    base_url: str
    screenshots: Path

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base_url}/v2{path}", wait_until="domcontentloaded")

    def text(self) -> str:
        """The page's visible text, whitespace collapsed."""
        return " ".join(self.page.inner_text("body").split())

    def wait_until(
        self, check: Callable[[str], bool], what: str, timeout: float = PAGE_TIMEOUT_SECONDS
    ) -> str:
        """The page's text once `check` holds for it (the UI renders after loading);
        fails saying what was awaited and what the page shows."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if check(text):
                return text
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{self.page.url} does not show {what} after {timeout:.0f} s; "
                    f"it shows:\n{text[:4000]}"
                )
            self.page.wait_for_timeout(250)

    def wait_for(self, *texts: str) -> str:
        """The page's text once it shows all of `texts`."""
        text = self.wait_until(
            lambda text: all(wanted in text for wanted in texts), f"all of {list(texts)}"
        )
        return text

    def wait_for_some(self, texts: list[str], at_least: int) -> None:
        """Wait until the page shows `at_least` of `texts` (a list shows a page of items)."""
        self.wait_until(
            lambda text: sum(wanted in text for wanted in texts) >= at_least,
            f"{at_least} of {texts[:20]}",
        )

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name, exact=True).click()

    def shot(self, name: str) -> None:
        # The run graph loads after the texts checked, behind a pulsing placeholder; it
        # is drawn on a canvas a moment after that.
        with contextlib.suppress(Exception):
            self.page.locator(".animate-pulse").first.wait_for(state="detached", timeout=10_000)
        self.page.wait_for_timeout(500)
        self.page.screenshot(path=str(self.screenshots / f"{name}.png"), full_page=True)


@pytest.fixture
def ui(browser: Any, docker_deployment: DockerDeployment, screenshots: Path) -> Iterator[Ui]:
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, timezone_id=SHOP_TIME_ZONE, locale="en-US"
    )
    try:
        yield Ui(context.new_page(), docker_deployment.ui_url, screenshots)
    finally:
        context.close()


@dataclass(frozen=True)
class Subflow:
    name: str  # the flow's name
    run_id: str
    run_name: str
    task_names: list[str]


@functools.cache
def subflows_of(api_url: str, flow_run_id: str) -> dict[str, Subflow]:
    """The subflow runs of a run and their task runs, as the API has them once two reads
    a second apart agree (the server records task runs from events, a moment late)."""
    previous = read_subflows(api_url, flow_run_id)
    for _ in range(30):
        time.sleep(1)
        current = read_subflows(api_url, flow_run_id)
        if current == previous:
            return current
        previous = current
    return previous


def read_subflows(api_url: str, flow_run_id: str) -> dict[str, Subflow]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    found: dict[str, Subflow] = {}
    with prefect_client(api_url) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            )
        )
        for run in runs:
            tasks = client.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run.id])),
                limit=200,
            )
            name = client.read_flow(run.flow_id).name
            found[name] = Subflow(name, str(run.id), run.name, [task.name for task in tasks])
    return found


def artifacts_of(api_url: str, flow_run_ids: list[str]) -> dict[str, Any]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with prefect_client(api_url) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=flow_run_ids))
        )
    return {artifact.key: artifact for artifact in artifacts}


def test_the_deployment_page_shows_the_monday_schedule_the_parameters_and_one_run_at_a_time(
    ui: Ui, docker_deployment: DockerDeployment
) -> None:
    ui.open(f"/deployments/deployment/{docker_deployment.deployment_id}")
    text = ui.wait_for(
        "weekly-churn-report",
        "At 08:00 AM, only on Monday",
        "docker-pool",
        "flows/main.py:churn_pipeline",
        "Concurrency Limit",
    )
    assert re.search(r"Concurrency Limit 1 ", text), text
    ui.shot("01-deployment")

    # One parameter, `params`: the deployment's values over the flow's defaults.
    ui.tab("Parameters")
    text = ui.wait_for("1 parameter", "params", '"locale":"pt_BR"')
    for key, value in declared_parameters().items():
        assert f'"{key}":{json.dumps(value)}' in text, key
    ui.shot("02-deployment-parameters")

    ui.tab("Configuration")
    ui.wait_for(docker_deployment.image, "auto_remove")
    ui.shot("03-deployment-configuration")


def test_a_completed_run_shows_its_four_subflows_each_with_its_tasks(
    ui: Ui, docker_deployment: DockerDeployment
) -> None:
    run = docker_deployment.completed
    subflows = subflows_of(docker_deployment.api_url, run.flow_run_id)
    assert set(subflows) == set(SUBFLOWS)

    ui.open(f"/runs/flow-run/{run.flow_run_id}?tab=SubflowRuns")
    expected = [f"{sub.name} / {sub.run_name}" for sub in subflows.values()]
    ui.wait_for(run.flow_run.name, "Completed", f"{len(SUBFLOWS)} Subflow runs", *expected)

    def cards(text: str) -> dict[str, tuple[str, ...] | None]:
        """Each subflow's card: its state and how many task runs it made."""
        found = {}
        for sub in subflows.values():
            card = re.search(rf"{sub.name} / {sub.run_name} (\w+) .*? (\d+) Task runs?", text)
            found[sub.name] = card.groups() if card else None
        return found

    expected_cards = {
        sub.name: ("Completed", str(len(sub.task_names))) for sub in subflows.values()
    }
    ui.wait_until(lambda text: cards(text) == expected_cards, f"subflow cards {expected_cards}")
    ui.shot("04-run-subflows")

    for number, name in enumerate(SUBFLOWS, start=5):
        sub = subflows[name]
        assert sub.task_names, f"the API has no task run of {name}"
        for task in SUBFLOW_TASKS.get(name, ()):
            assert any(t.startswith(f"{task}-") for t in sub.task_names), (task, sub.task_names)
        ui.open(f"/runs/flow-run/{sub.run_id}?tab=TaskRuns")
        count = len(sub.task_names)
        noun = "Task run" if count == 1 else "Task runs"
        ui.wait_for(sub.run_name, "Completed", f"{count} {noun}")
        # The list shows a page of them (ten or more): the run's own tasks, by name.
        ui.wait_for_some(sub.task_names, at_least=min(count, 10))
        ui.shot(f"{number:02d}-{name}-tasks")

    # The link a run prints ("View at ...") opens it (Prefect's V1 path, still served).
    link = re.search(r"View at (http://\S+/runs/flow-run/" + run.flow_run_id + ")", run.worker_log)
    assert link is not None, "the run printed no link to itself"
    ui.page.goto(link.group(1), wait_until="domcontentloaded")
    ui.wait_for(run.flow_run.name, "Subflow Runs")
    assert ui.page.title().startswith(f"Flow Run: {run.flow_run.name}")
    ui.shot("09-run-printed-link")


def test_the_artifacts_show_the_report_with_the_weeks_figures_and_the_dbt_results(
    ui: Ui, docker_deployment: DockerDeployment
) -> None:
    subflows = subflows_of(docker_deployment.api_url, docker_deployment.completed.flow_run_id)
    report_run = subflows["send-churn-report"]
    build_run = subflows["build-warehouse-models"]
    artifacts = artifacts_of(docker_deployment.api_url, [report_run.run_id, build_run.run_id])
    report_key = f"churn-report-{AS_OF.isoformat()}"
    assert {report_key, "churn-weekly-last-12-weeks", "dbt-build-results"} <= set(artifacts)

    ui.open(f"/runs/flow-run/{report_run.run_id}?tab=Artifacts")
    ui.wait_for("MARKDOWN", report_key, "TABLE", "churn-weekly-last-12-weeks")
    ui.shot("09-report-subflow-artifacts")

    # The report as Markdown: the week's figures as the marts hold them, in pt_BR ...
    ui.open(f"/artifacts/artifact/{artifacts[report_key].id}")
    with docker_deployment.warehouse.connect() as conn:
        week = conn.execute(
            "select weekly_churn_rate, churned_in_week, active_start, active_end, new_in_week "
            "from marts.churn_weekly where week_end = %s",
            (AS_OF,),
        ).fetchone()
    assert week is not None
    rate, churned, active_start, active_end, new = week
    labels = labels_for(LOCALE)
    text = ui.wait_for(
        labels["title"],
        f"{labels['week']}: {format_date(AS_OF - dt.timedelta(days=7), LOCALE)} \u2013 "
        f"{format_date(AS_OF - dt.timedelta(days=1), LOCALE)}",
        f"{labels['churn_rate']}: {format_percent(float(rate), LOCALE)}",
        f"{labels['churned']}: {format_int(churned, LOCALE)} {labels['of']} "
        f"{format_int(active_start, LOCALE)}",
        f"{labels['active']}: {format_int(active_end, LOCALE)}",
        f"{labels['new']}: {format_int(new, LOCALE)}",
    )
    # ... and every line the chat got.
    (report,) = [m for m in docker_deployment.report_messages if m.method == "sendMessage"]
    for line in (report.plain_text or "").splitlines():
        if line.strip():
            assert " ".join(line.split()) in text, line
    ui.shot("10-report-artifact")

    # The dbt results: a table of every node with its status, ten rows a page.
    results = artifacts["dbt-build-results"]
    rows = json.loads(results.data) if isinstance(results.data, str) else results.data
    ui.open(f"/artifacts/artifact/{results.id}")
    first_page = [f"{row['node']} {row['type']} {row['status']}" for row in rows[:10]]
    ui.wait_for(
        "node type status seconds message",
        *first_page,
        f"Page 1 of {math.ceil(len(rows) / 10)}",
    )
    statuses = {row["status"] for row in rows}
    assert "success" in statuses and "pass" in statuses, statuses
    assert not statuses & (FAILED_STATUSES | {"skipped"}), statuses
    ui.shot("11-dbt-results-artifact")


def test_a_failed_run_names_the_failing_dbt_test_in_its_state_message(
    ui: Ui, docker_deployment: DockerDeployment
) -> None:
    run = docker_deployment.failed
    message = run.flow_run.state.message or ""
    assert FAILING_CHECK in message
    ui.open(f"/runs/flow-run/{run.flow_run_id}?tab=Details")
    ui.wait_for(run.flow_run.name, "Failed", "State Message", message)
    ui.shot("12-failed-run")

    # The subflow that failed says the same; the report's subflow never started.
    subflows = subflows_of(docker_deployment.api_url, run.flow_run_id)
    assert "send-churn-report" not in subflows, "the report ran after a failed dbt test"
    build_run = subflows["build-warehouse-models"]
    ui.open(f"/runs/flow-run/{build_run.run_id}?tab=Details")
    ui.wait_for(build_run.run_name, "Failed", "State Message", FAILING_CHECK)
    ui.shot("13-failed-dbt-subflow")
