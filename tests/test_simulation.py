"""The simulation on its own: reproducible, incremental, plausible, in both locales."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pyarrow as pa
import pytest

from churn.simulation import model as simulation
from churn.simulation.model import CATEGORIES, ShopSimulation
from churn.simulation.settings import ShopSettings

EPOCH = dt.date(2025, 1, 6)


def settings(**overrides) -> ShopSettings:
    values = dict(
        seed=11, epoch=EPOCH, customers=1500, products=120, history_days=200, locale="en_US"
    )
    values.update(overrides)
    return ShopSettings(**values)


def generate(shop: ShopSettings, start: dt.date, end: dt.date) -> dict[str, pd.DataFrame]:
    parts = list(ShopSimulation(shop).generate(start, end))
    frames = {}
    for name in ("customers", "orders", "order_items", "cancellations", "lifecycles"):
        frames[name] = pa.concat_tables([getattr(part, name) for part in parts]).to_pandas()
    return frames


def as_csv(frame: pd.DataFrame, key: list[str]) -> str:
    return frame.sort_values(key).to_csv(index=False)


KEYS = {
    "customers": ["customer_id"],
    "orders": ["order_id"],
    "order_items": ["order_id", "line_number"],
    "cancellations": ["order_id"],
}


def test_same_seed_and_dates_give_identical_rows():
    end = EPOCH + dt.timedelta(days=200)
    first = generate(settings(), EPOCH, end)
    second = generate(settings(), EPOCH, end)
    for name in KEYS:
        assert first[name].to_csv(index=False) == second[name].to_csv(index=False), name
    assert len(first["orders"]) > 1000


def test_another_seed_gives_another_shop():
    end = EPOCH + dt.timedelta(days=100)
    assert not generate(settings(), EPOCH, end)["orders"].equals(
        generate(settings(seed=12), EPOCH, end)["orders"]
    )


def test_generating_at_once_equals_generating_in_two_steps():
    middle = EPOCH + dt.timedelta(days=123)
    end = EPOCH + dt.timedelta(days=200)
    whole = generate(settings(), EPOCH, end)
    first = generate(settings(), EPOCH, middle)
    second = generate(settings(), middle, end)
    for name, key in KEYS.items():
        joined = pd.concat([first[name], second[name]], ignore_index=True)
        assert as_csv(joined, key) == as_csv(whole[name], key), name
    # ground truth known at the end is the same either way
    assert whole["lifecycles"].equals(second["lifecycles"])


def test_rows_are_plausible_by_construction():
    shop = settings()
    frames = generate(shop, EPOCH, EPOCH + dt.timedelta(days=200))
    customers, orders = frames["customers"], frames["orders"]
    items, cancellations = frames["order_items"], frames["cancellations"]
    products = ShopSimulation(shop).products().to_pandas()

    signup = orders.merge(customers, on="customer_id", how="left", validate="many_to_one")
    assert signup["signup_date"].notna().all(), "every order's customer exists"
    assert (signup["order_date"] >= signup["signup_date"]).all(), "no order before signup"
    assert (signup["ordered_at"] >= signup["signed_up_at"]).all()

    assert items["order_id"].isin(orders["order_id"]).all()
    assert items["product_id"].isin(products["product_id"]).all()
    assert items.groupby("order_id").size().between(1, 4).all()
    assert items["quantity"].between(1, 3).all()

    timed = cancellations.merge(orders, on="order_id", validate="one_to_one")
    assert (timed["cancelled_at"] > timed["ordered_at"]).all()
    assert (timed["status"] == "cancelled").all()
    assert set(orders["status"]) == {"completed", "cancelled"}
    assert (orders["status"] == "cancelled").sum() == len(cancellations)
    assert 0.11 < (orders["status"] == "cancelled").mean() < 0.19

    assert (products["price"] > products["cost"]).all()
    assert products["cost"].between(5, 100).all()
    assert ((products["price"] / products["cost"]).round(2).between(1.19, 2.51)).all()
    assert customers["email"].is_unique
    assert orders["order_id"].is_unique


@pytest.mark.parametrize("locale", ["en_US", "pt_BR"])
def test_both_locales_name_things_in_their_language(locale: str):
    shop = settings(locale=locale, customers=300)
    frames = generate(shop, EPOCH, EPOCH + dt.timedelta(days=60))
    products = ShopSimulation(shop).products().to_pandas()
    assert set(products["category"]) == set(CATEGORIES[locale])
    assert frames["customers"]["email"].str.match(r"^[a-z0-9.]+@[a-z0-9.-]+$").all()
    if locale == "pt_BR":
        assert "Eletrônicos" in set(products["category"])
        text = " ".join(frames["customers"]["name"]) + " ".join(products["name"])
        assert any(ch in text for ch in "ãáâçéêíóôõú"), "Portuguese names carry accents"
    else:
        assert "Electronics" in set(products["category"])


def test_default_calibration_gives_about_ten_orders_a_customer_a_year_and_real_churn():
    shop = settings(customers=10_000, products=500, history_days=365, epoch=dt.date(2025, 1, 1))
    end = dt.date(2026, 1, 1)
    frames = generate(shop, shop.epoch, end)
    assert 80_000 <= len(frames["orders"]) <= 120_000
    dropped = frames["lifecycles"]["dropout_date"].notna()
    assert 0.25 < dropped.mean() < 0.75, "a clearly visible share of customers drops out"


def test_the_chunk_size_bounds_memory_but_does_not_change_the_rows(monkeypatch):
    end = EPOCH + dt.timedelta(days=200)
    default = generate(settings(), EPOCH, end)
    monkeypatch.setattr(simulation, "GENERATION_CHUNK", 97)
    chunked = generate(settings(), EPOCH, end)
    for name in (*KEYS, "lifecycles"):
        assert chunked[name].equals(default[name]), name


def test_csv_files_are_byte_for_byte_identical_for_the_same_seed_and_dates(tmp_path):
    from churn.simulation.landing import write_activity_files
    from churn.simulation.plan import GenerationPlan

    plan = GenerationPlan(settings(), EPOCH, EPOCH + dt.timedelta(days=120), True, "test")
    first = write_activity_files(plan, tmp_path / "first")
    second = write_activity_files(plan, tmp_path / "second")
    assert first == second and first["orders"] > 500
    for path in sorted((tmp_path / "first").glob("*.csv")):
        assert path.read_bytes() == (tmp_path / "second" / path.name).read_bytes(), path.name
    header, row = (tmp_path / "first" / "orders.csv").read_text().splitlines()[:2]
    assert header == "order_id,customer_id,order_date,ordered_at,status"
    assert re.fullmatch(r'\d+,\d+,\d{4}-\d\d-\d\d,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,"\w+"', row)


def test_names_do_not_depend_on_whether_the_catalogue_was_drawn_first():
    window = (EPOCH, EPOCH + dt.timedelta(days=30))
    catalogue_first = ShopSimulation(settings())
    catalogue_first.products()
    customers_first = ShopSimulation(settings())
    first = next(customers_first.generate(*window)).customers
    assert next(catalogue_first.generate(*window)).customers.equals(first)
    assert catalogue_first.products().equals(customers_first.products())


def test_a_cancellation_never_precedes_its_order_even_in_the_last_second_of_a_day() -> None:
    import numpy as np

    day = 20_000.0
    # placed at 00:00:00, at noon, in the day's last second and a hair before midnight
    order_time = np.array([day, day + 0.5, day + 86_399.5 / 86_400, np.nextafter(day + 1, 0)])
    placed = np.floor(order_time * 86_400).astype(np.int64)
    last_second = int((day + 1) * 86_400) - 1
    for draw in (0.0, 0.5, np.nextafter(1.0, 0)):
        cancelled = simulation.cancellation_seconds(order_time, np.full(4, draw))
        assert (cancelled >= placed).all(), (draw, cancelled - placed)
        assert (cancelled <= last_second).all()
    # later in the day whenever the day has a second left
    assert (simulation.cancellation_seconds(order_time[:2], np.zeros(2)) > placed[:2]).all()
