"""The run parameters: one model shared by the CLI, the flows and the Prefect UI.

Every default and every bound is written here once. The flows take a `RunParameters`
as their one parameter (the Prefect UI renders its fields as a form, with these
descriptions), and `python flows/main.py` builds its options from the same fields.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal, cast, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SHOP_TIME_ZONE = ZoneInfo("America/Sao_Paulo")
Locale = Literal["en_US", "pt_BR"]
SUPPORTED_LOCALES: tuple[str, ...] = get_args(Locale)
SourceKind = Literal["simulation", "files", "raw"]

# The patterns Prefect accepts for block names.
BlockName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z0-9][a-z0-9-]*$")]


def shop_today() -> dt.date:
    """Today's date in the shop's time zone (the default as-of date)."""
    return dt.datetime.now(SHOP_TIME_ZONE).date()


class RunParameters(BaseModel):
    """Everything a pipeline run depends on; the Prefect UI renders these as a form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: dt.date | None = Field(
        default=None,
        description="Exclusive end of the reported week [as_of - 7, as_of) "
        "(default: today in America/Sao_Paulo).",
    )
    customers: int = Field(
        default=10_000,
        ge=1,
        le=50_000_000,
        description="Simulation: customers signing up over the history window.",
    )
    products: int = Field(
        default=500, ge=1, le=1_000_000, description="Simulation: catalogue size."
    )
    history_days: int = Field(
        default=730,
        ge=14,
        le=3650,
        description="Simulation: days of history landed by the first run.",
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Simulation: random seed.")
    locale: Locale = Field(
        default="en_US", description="Locale of the report and of the simulated data."
    )
    churn_window_days: int = Field(
        default=90,
        ge=31,
        le=730,
        description="Days without a completed order after which a customer is churned.",
    )
    warehouse_block: BlockName = Field(
        default="warehouse", description="SqlAlchemyConnector block of the warehouse."
    )
    telegram_block: BlockName = Field(
        default="telegram", description="TelegramBot block of the report's chat."
    )
    source: str = Field(
        default="simulation",
        pattern=r"^(simulation|raw|files:.+)$",
        description="Where the week's activity comes from: simulation (a simulated shop), "
        "files:PATH (a shop's exports: a folder of the raw tables, or one file of orders or "
        "order lines, CSV or Parquet) or raw (what the warehouse already holds).",
    )
    replace_raw: bool = Field(
        default=False,
        description="Let the source replace raw data it did not land (a shop's data under "
        "the simulation, a simulated shop under an import).",
    )
    dbt_node_tasks: bool = Field(
        default=True,
        description="Run each dbt model and test as its own Prefect task (slower).",
    )
    full_refresh: bool = Field(
        default=False, description="Rebuild every incremental model from scratch."
    )
    resend: bool = Field(
        default=False,
        description="Send the report even if this week was already delivered to the chat.",
    )

    @property
    def source_kind(self) -> SourceKind:
        """simulation, files or raw."""
        return cast(SourceKind, self.source.partition(":")[0])

    @property
    def source_path(self) -> Path:
        """The folder or file of a files: source."""
        if self.source_kind != "files":
            raise ValueError(f"the source {self.source!r} has no path")
        return Path(self.source.partition(":")[2]).expanduser()

    def resolved_as_of(self) -> dt.date:
        """The as-of date, today in the shop's time zone when none was given."""
        return self.as_of or shop_today()

    def for_week(self) -> RunParameters:
        """The same parameters with the as-of date fixed (the subflows of one run share it)."""
        return self.model_copy(update={"as_of": self.resolved_as_of()})


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad parameter and why (parameters hold no secret)."""
    parts = []
    for item in error.errors():
        name = ".".join(str(piece) for piece in item["loc"]) or "parameters"
        parts.append(f"{name.replace('_', '-')}: {item['msg']}")
    return "invalid parameters: " + "; ".join(parts)
