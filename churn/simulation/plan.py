"""Which window of the simulated shop a run generates, from what `raw` already holds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from churn.errors import InputRefused
from churn.simulation.settings import ShopSettings
from churn.simulation.state import LandedState


class GenerationError(InputRefused):
    """The requested generation cannot be done on this warehouse."""


@dataclass(frozen=True)
class GenerationPlan:
    """What a run generates: the window, and whether it replaces all of `raw`."""

    settings: ShopSettings
    start: dt.date
    end: dt.date
    replace_all: bool
    reason: str


def plan_generation(
    state: LandedState | None,
    *,
    as_of: dt.date,
    seed: int,
    customers: int,
    products: int,
    history_days: int,
    locale: str,
    foreign_data: str | None = None,
    replace_raw: bool = False,
) -> GenerationPlan:
    """Decide the window to generate from what `raw` already holds.

    An empty warehouse, or one holding a different simulated shop, gets the whole
    history. Otherwise the run extends the shop up to `as_of`, or, when `as_of` is not
    past what is landed, regenerates the reported week (identical rows, replaced).

    `foreign_data` describes rows in raw that the simulation did not land (an import, a
    shop's own loader): the simulation never replaces them unless `replace_raw` says so.
    """
    requested = ShopSettings(
        seed=seed,
        epoch=as_of - dt.timedelta(days=history_days),
        customers=customers,
        products=products,
        history_days=history_days,
        locale=locale,
    )
    bootstrap = GenerationPlan(requested, requested.epoch, as_of, True, "")
    if foreign_data is not None:
        if not replace_raw:
            raise GenerationError(
                f"{foreign_data}; the simulation never replaces it: report on it with "
                "--source raw, add your exports with --source files:PATH, or replace it "
                "with a simulated shop with --replace-raw"
            )
        return _with_reason(
            bootstrap, f"replacing {foreign_data} with a simulated shop (--replace-raw)"
        )
    if state is None:
        return _with_reason(bootstrap, f"empty warehouse: landing {history_days} days of history")
    stored = ShopSettings.from_dict(state.settings)
    changed = [
        name
        for name in ("seed", "customers", "products", "history_days", "locale")
        if getattr(stored, name) != getattr(requested, name)
    ]
    if changed:
        what = ", ".join(f"{n} {getattr(stored, n)} -> {getattr(requested, n)}" for n in changed)
        return _with_reason(
            bootstrap, f"a different shop was requested ({what}): regenerating history"
        )
    if as_of <= stored.epoch + dt.timedelta(days=7):
        raise GenerationError(
            f"as-of date {as_of} is not a full week after the simulated shop opened "
            f"({stored.epoch}); use a later date or a longer --history-days"
        )
    if as_of > state.landed_until:
        return GenerationPlan(
            stored,
            state.landed_until,
            as_of,
            False,
            f"extending the shop from {state.landed_until}",
        )
    start = as_of - dt.timedelta(days=7)
    return GenerationPlan(
        stored, start, as_of, False, f"rerun: replacing the week {start}..{as_of}"
    )


def _with_reason(plan: GenerationPlan, reason: str) -> GenerationPlan:
    return replace(plan, reason=reason)
