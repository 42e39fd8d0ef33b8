"""Run parameters shared by the CLI and the flows, validated before any work starts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SHOP_TIME_ZONE = ZoneInfo("America/Sao_Paulo")
SUPPORTED_LOCALES = ("en_US", "pt_BR")
Locale = Literal["en_US", "pt_BR"]

DEFAULT_CUSTOMERS = 10_000
DEFAULT_PRODUCTS = 500
DEFAULT_HISTORY_DAYS = 730
DEFAULT_SEED = 42
DEFAULT_CHURN_WINDOW_DAYS = 90

# Constrained types, shared by the CLI, the flows' signatures (the Prefect UI form) and
# RunParameters, so every entry point rejects the same values.
CustomerCount = Annotated[int, Field(ge=1, le=50_000_000)]
ProductCount = Annotated[int, Field(ge=1, le=1_000_000)]
HistoryDays = Annotated[int, Field(ge=14, le=3650)]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
ChurnWindowDays = Annotated[int, Field(ge=31, le=730)]
BlockName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z0-9][a-z0-9-]*$")]


def shop_today() -> dt.date:
    """Today's date in the shop's time zone (the default as-of date)."""
    return dt.datetime.now(SHOP_TIME_ZONE).date()


class RunParameters(BaseModel):
    """Everything a pipeline run depends on; the Prefect UI renders these as a form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: dt.date | None = Field(
        default=None,
        description="Exclusive end of the reported week [as_of - 7, as_of). Default: today.",
    )
    customers: CustomerCount = DEFAULT_CUSTOMERS
    products: ProductCount = DEFAULT_PRODUCTS
    history_days: HistoryDays = DEFAULT_HISTORY_DAYS
    seed: Seed = DEFAULT_SEED
    locale: Locale = "en_US"
    churn_window_days: ChurnWindowDays = DEFAULT_CHURN_WINDOW_DAYS
    warehouse_block: BlockName = "warehouse"
    telegram_block: BlockName = "telegram"
    generate: bool = True
    dbt_node_tasks: bool = True
    full_refresh: bool = False
    resend: bool = False

    @field_validator("as_of")
    @classmethod
    def _as_of_is_plausible(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and not dt.date(2000, 1, 1) <= value <= dt.date(2100, 1, 1):
            raise ValueError("must be between 2000-01-01 and 2100-01-01")
        return value

    def resolved_as_of(self) -> dt.date:
        return self.as_of or shop_today()


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad parameter and why, without echoing secrets (there are none)."""
    parts = []
    for item in error.errors():
        name = ".".join(str(piece) for piece in item["loc"]) or "parameters"
        parts.append(f"{name.replace('_', '-')}: {item['msg']}")
    return "invalid parameters: " + "; ".join(parts)
