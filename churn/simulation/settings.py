"""What defines a simulated shop: kept with its data, so later runs extend the same shop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ShopSettings:
    """What defines a simulated shop; stored with the data so later runs extend the same shop."""

    seed: int
    epoch: dt.date
    customers: int
    products: int
    history_days: int
    locale: str

    @property
    def signups_per_day(self) -> float:
        return self.customers / self.history_days

    def as_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "epoch": self.epoch.isoformat(),
            "customers": self.customers,
            "products": self.products,
            "history_days": self.history_days,
            "locale": self.locale,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ShopSettings:
        return cls(
            seed=int(values["seed"]),
            epoch=dt.date.fromisoformat(str(values["epoch"])),
            customers=int(values["customers"]),
            products=int(values["products"]),
            history_days=int(values["history_days"]),
            locale=str(values["locale"]),
        )
