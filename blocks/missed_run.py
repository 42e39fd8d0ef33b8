"""The missed-run alert: when a weekly run has not completed by its deadline, say so.

A Prefect automation with a proactive trigger watches every flow run of the project's
deployments: once a run is due (it is picked up, or marked late because nobody picked
it up), the automation expects it to finish within the deadline; if it does not, it
sends one message to the report's chat through a notification block (a webhook to the
Telegram Bot API, the token kept as the block's secret). A run that fails is reported by
the pipeline's own failure alert and is not reported again. `python -m blocks
--missed-run-alert` creates or updates both.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

if TYPE_CHECKING:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.events.schemas.automations import AutomationCore

    from blocks.telegram import TelegramBot

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AUTOMATION_NAME = "churn-pipeline: weekly run not completed in time"
NOTIFICATION_BLOCK = "telegram-missed-run"
DEFAULT_DEADLINE = dt.timedelta(hours=2)
TELEGRAM_API = "https://api.telegram.org/bot"
# A run is due when a worker picks it up (Pending) or when nobody did on time (Late);
# it is accounted for once it ends in one of these states (a failure has its own alert).
DUE = ("prefect.flow-run.Pending", "prefect.flow-run.Late")
ACCOUNTED_FOR = (
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
)
MESSAGE_SUBJECT = "⚠️ Weekly churn report: a run did not complete in time"
MESSAGE_BODY = (
    "A run of {{ deployment.name }} ({{ flow_run.name }}) started or was due at "
    "{{ flow_run.expected_start_time }} and has not completed within {deadline}: the "
    "week's report may be missing. {{ flow_run|ui_url }}"
)


def project_deployments(prefect_yaml: Path = PROJECT_ROOT / "prefect.yaml") -> list[str]:
    """The names of the deployments prefect.yaml declares."""
    config = yaml.safe_load(prefect_yaml.read_text())
    return [deployment["name"] for deployment in config.get("deployments", [])]


def _is_private(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_private or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def notification_block(telegram: TelegramBot) -> CustomWebhookNotificationBlock:
    """A webhook block that sends a text message to the Telegram block's chat."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.types import SecretDict

    base = telegram.api_base_url or TELEGRAM_API
    return CustomWebhookNotificationBlock(
        name="telegram",
        url=base + "{{token}}/sendMessage",
        method="POST",
        form_data={"chat_id": telegram.chat_id, "text": "{{subject}}\n\n{{body}}"},
        secrets=SecretDict({"token": telegram.bot_token.get_secret_value()}),
        # the public Bot API only: a private address is allowed for a self-hosted one
        allow_private_urls=_is_private(base),
        headers=None,
        cookies=None,
    )


def missed_run_automation(
    block_document_id: Any, deployments: list[str], deadline: dt.timedelta
) -> AutomationCore:
    """The automation: for each run of these deployments, an alert if it is due and has
    not ended within `deadline`."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    minutes = int(deadline.total_seconds() // 60)
    shown = f"{minutes} minutes" if minutes else f"{int(deadline.total_seconds())} seconds"
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(
            f"One message to the report's chat when a run of {', '.join(deployments)} "
            f"has not completed within {shown} of being due."
        ),
        trigger=EventTrigger(
            posture=Posture.Proactive,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "deployment",
                "prefect.resource.name": deployments,
            },
            after=set(DUE),
            expect=set(ACCOUNTED_FOR),
            for_each={"prefect.resource.id"},
            threshold=1,
            within=deadline,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject=MESSAGE_SUBJECT,
                body=MESSAGE_BODY.replace("{deadline}", shown),
            )
        ],
    )


def create_missed_run_alert(
    telegram_block: str, deadline: dt.timedelta = DEFAULT_DEADLINE
) -> tuple[str, list[str]]:
    """Create or update the notification block and the automation; returns their names."""
    from prefect.client.orchestration import get_client

    from blocks.telegram import TelegramBot
    from churn.settings.blocks import load_block

    telegram = load_block(TelegramBot, telegram_block)
    if telegram is None:
        raise LookupError(
            f"no TelegramBot block named '{telegram_block}': the alert goes to its chat"
        )
    block = notification_block(telegram)
    block_id = block.save(NOTIFICATION_BLOCK, overwrite=True, _sync=True)  # type: ignore[call-arg]
    deployments = project_deployments()
    with get_client(sync_client=True) as client:
        for existing in client.read_automations_by_name(AUTOMATION_NAME):
            client.delete_automation(existing.id)
        client.create_automation(missed_run_automation(block_id, deployments, deadline))
    return AUTOMATION_NAME, deployments
