"""A deterministic, incremental simulation of a shop's activity.

Customers sign up over time, buy at their own pace and drop out after a purchase with
their own probability (a BG/NBD-style process). Every random draw is either a pure
function of (seed, stream, key) or comes from a generator seeded by a fixed-size block of
customer ids, so a customer's whole life depends only on the seed and the simulation's
epoch, never on the window being generated. That is what makes generating [t0, t2) at
once equal to generating [t0, t1) then [t1, t2).

Nothing here touches a database or the file system: it yields pandas frames.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from faker import Faker

CUSTOMER_BLOCK = 65_536
MAX_ORDERS_PER_CUSTOMER = 999
ORDER_ID_STRIDE = 1000
CANCELLATION_RATE = 0.15
NEVER_BUYER_SHARE = 0.12

CATEGORIES = {
    "en_US": ("Electronics", "Clothing", "Books", "Sports", "Beauty"),
    "pt_BR": ("Eletrônicos", "Roupas", "Livros", "Esportes", "Beleza"),
}
PRODUCT_NOUNS = {
    "en_US": (
        ("Headphones", "Smartwatch", "Charger", "Speaker", "Keyboard", "Webcam"),
        ("T-shirt", "Jacket", "Sneakers", "Dress", "Jeans", "Hoodie"),
        ("Novel", "Cookbook", "Atlas", "Biography", "Poetry Book", "Comic"),
        ("Yoga Mat", "Football", "Dumbbell", "Bike Helmet", "Tennis Racket", "Water Bottle"),
        ("Perfume", "Lipstick", "Face Cream", "Shampoo", "Sunscreen", "Nail Polish"),
    ),
    "pt_BR": (
        (
            "Fone de Ouvido",
            "Relógio Inteligente",
            "Carregador",
            "Caixa de Som",
            "Teclado",
            "Webcam",
        ),
        ("Camiseta", "Jaqueta", "Tênis", "Vestido", "Calça Jeans", "Moletom"),
        ("Romance", "Livro de Receitas", "Atlas", "Biografia", "Poesia", "Quadrinhos"),
        ("Tapete de Yoga", "Bola de Futebol", "Halter", "Capacete", "Raquete", "Garrafa"),
        ("Perfume", "Batom", "Creme Facial", "Xampu", "Protetor Solar", "Esmalte"),
    ),
}
CANCEL_REASONS = (
    "changed_mind",
    "found_cheaper",
    "delivery_too_slow",
    "payment_failed",
    "ordered_by_mistake",
)

# Counter-based streams: each kind of draw has its own stream number.
_S_GAP, _S_DROP, _S_CANCEL, _S_ITEMS, _S_PRODUCT, _S_QTY = 1, 2, 3, 4, 5, 6
_S_CANCEL_TIME, _S_REASON, _S_COST, _S_MARKUP, _S_CATEGORY, _S_NAME = 7, 8, 9, 10, 11, 12
_S_SIGNUP_TIME, _S_POPULARITY, _S_NOUN, _S_COLOR = 13, 14, 15, 16

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective, well-scrambling map on uint64."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64, copy=True)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z & _MASK64


def uniform(seed: int, stream: int, key: np.ndarray, sub: np.ndarray | int = 0) -> np.ndarray:
    """Uniform draws in (0, 1) that depend only on (seed, stream, key, sub)."""
    with np.errstate(over="ignore"):
        base = _mix64(np.asarray([seed * 1_000_003 + stream], dtype=np.uint64))[0]
        x = _mix64(np.asarray(key, dtype=np.uint64) ^ base)
        x = _mix64(x + np.asarray(sub, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


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
    def from_dict(cls, values: dict[str, object]) -> ShopSettings:
        return cls(
            seed=int(values["seed"]),
            epoch=dt.date.fromisoformat(str(values["epoch"])),
            customers=int(values["customers"]),
            products=int(values["products"]),
            history_days=int(values["history_days"]),
            locale=str(values["locale"]),
        )


@dataclass(frozen=True)
class ShopActivity:
    """One chunk of generated rows, each frame laid out exactly like its raw table."""

    customers: pd.DataFrame
    orders: pd.DataFrame
    order_items: pd.DataFrame
    cancellations: pd.DataFrame
    lifecycles: pd.DataFrame


RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "name", "email", "signup_date", "signed_up_at"),
    "products": ("product_id", "name", "category", "cost", "price"),
    "orders": ("order_id", "customer_id", "order_date", "ordered_at", "status"),
    "order_items": ("order_id", "line_number", "product_id", "quantity", "unit_price"),
    "cancellations": ("order_id", "cancel_reason", "cancelled_at"),
}
LIFECYCLE_COLUMNS = (
    "customer_id",
    "purchase_rate_per_day",
    "dropout_probability",
    "dropout_date",
)


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class ShopSimulation:
    """Generates any window [start, end) of one shop's life, identically every time."""

    def __init__(self, settings: ShopSettings) -> None:
        self.settings = settings

    # -- calendar -------------------------------------------------------------------------

    def _day_index(self, day: dt.date) -> int:
        return (day - self.settings.epoch).days

    def _date_strings(self, day_offsets: np.ndarray) -> np.ndarray:
        epoch = np.datetime64(self.settings.epoch, "D")
        return (epoch + day_offsets.astype("timedelta64[D]")).astype(str)

    def _timestamp_strings(self, times: np.ndarray) -> np.ndarray:
        epoch = np.datetime64(self.settings.epoch, "s")
        seconds = np.floor(times * 86_400).astype(np.int64)
        stamps = (epoch + seconds.astype("timedelta64[s]")).astype(str)
        return np.char.replace(stamps, "T", " ")

    def signups_per_day(self, end: dt.date) -> np.ndarray:
        """How many customers sign up on each day from the epoch up to `end` (exclusive)."""
        days = max(self._day_index(end), 0)
        counts = np.empty(days, dtype=np.int64)
        weekday_factor = (1.0, 1.05, 1.05, 1.0, 0.95, 0.9, 0.85)
        first_weekday = self.settings.epoch.weekday()
        rate = self.settings.signups_per_day
        for day in range(days):
            factor = weekday_factor[(first_weekday + day) % 7]
            # The first weeks start slowly: a shop that opens does not sell at full pace.
            ramp = min(1.0, 0.5 + day / 60)
            rng = np.random.default_rng([self.settings.seed, 1, day])
            counts[day] = rng.poisson(rate * factor * ramp * 7 / 6.8)
        return counts

    # -- catalogue ------------------------------------------------------------------------

    def products(self) -> pd.DataFrame:
        seed, count = self.settings.seed, self.settings.products
        ids = np.arange(1, count + 1, dtype=np.int64)
        cost = np.round(5 + 95 * uniform(seed, _S_COST, ids), 2)
        price = np.round(cost * (1.2 + 1.3 * uniform(seed, _S_MARKUP, ids)), 2)
        price = np.maximum(price, cost + 0.01)
        category_index = np.floor(uniform(seed, _S_CATEGORY, ids) * 5).astype(int)
        categories = np.asarray(CATEGORIES[self.settings.locale])[category_index]
        nouns = PRODUCT_NOUNS[self.settings.locale]
        noun_pick = np.floor(uniform(seed, _S_NOUN, ids) * 6).astype(int)
        colours = self._colours
        colour_pick = np.floor(uniform(seed, _S_COLOR, ids) * len(colours)).astype(int)
        names = [
            f"{nouns[cat][noun]} {colours[colour]} {pid}"
            for pid, cat, noun, colour in zip(
                ids, category_index, noun_pick, colour_pick, strict=True
            )
        ]
        return pd.DataFrame(
            {
                "product_id": ids,
                "name": names,
                "category": categories,
                "cost": cost,
                "price": price,
            }
        )

    @cached_property
    def _popularity_cdf(self) -> np.ndarray:
        ids = np.arange(1, self.settings.products + 1, dtype=np.int64)
        # A long tail: a few products sell much more than the rest.
        weights = uniform(self.settings.seed, _S_POPULARITY, ids) ** 3 + 0.02
        cdf = np.cumsum(weights)
        return cdf / cdf[-1]

    @cached_property
    def _faker(self) -> Faker:
        fake = Faker(self.settings.locale)
        fake.seed_instance(self.settings.seed)
        return fake

    @cached_property
    def _colours(self) -> list[str]:
        fake = self._faker
        return sorted({fake.color_name() for _ in range(200)})

    @cached_property
    def _name_pools(self) -> tuple[list[str], list[str], list[str]]:
        fake = self._faker
        first = sorted({fake.first_name() for _ in range(3000)})
        last = sorted({fake.last_name() for _ in range(3000)})
        domains = sorted({fake.free_email_domain() for _ in range(200)})
        return first, last, domains

    # -- customers and orders -------------------------------------------------------------

    def generate(self, start: dt.date, end: dt.date) -> Iterator[ShopActivity]:
        """Yield the shop's activity in [start, end), one block of customers at a time.

        Customers are those who signed up in the window; orders, items and cancellations
        those of orders placed in the window; lifecycles hold every customer known by
        `end` with their true dropout date if it happened before `end`.
        """
        if end <= start:
            raise ValueError(f"empty window: {start} >= {end}")
        if start < self.settings.epoch:
            raise ValueError(f"window starts before the shop opened ({self.settings.epoch})")
        counts = self.signups_per_day(end)
        total = int(counts.sum())
        signup_day = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        window = (self._day_index(start), self._day_index(end))
        for block_start in range(0, total, CUSTOMER_BLOCK):
            block_end = min(block_start + CUSTOMER_BLOCK, total)
            yield self._generate_block(block_start, block_end, signup_day, window)

    def _generate_block(
        self,
        block_start: int,
        block_end: int,
        signup_day: np.ndarray,
        window: tuple[int, int],
    ) -> ShopActivity:
        seed = self.settings.seed
        block_number = block_start // CUSTOMER_BLOCK
        # Customer traits come from a generator seeded by the block, drawn for the full
        # block so a customer's traits never depend on how many customers exist yet.
        rng = np.random.default_rng([seed, 2, block_number])
        rate_full = rng.gamma(shape=2.2, scale=0.115 / 2.2, size=CUSTOMER_BLOCK)
        dropout_full = rng.beta(1.1, 16.0, size=CUSTOMER_BLOCK)
        never_full = rng.random(CUSTOMER_BLOCK) < NEVER_BUYER_SHARE
        size = block_end - block_start
        customer_ids = np.arange(block_start + 1, block_end + 1, dtype=np.int64)
        rate = np.clip(rate_full[:size], 1 / 400, 0.5)
        dropout = dropout_full[:size]
        never = never_full[:size]
        days = signup_day[block_start:block_end]
        signup_time = days + uniform(seed, _S_SIGNUP_TIME, customer_ids)

        window_start, window_end = window
        orders_customer, orders_k, orders_time, dropout_time = self._purchases(
            customer_ids, signup_time, rate, dropout, never, window_start, window_end
        )

        in_window = (days >= window_start) & (days < window_end)
        customers = self._customer_frame(customer_ids[in_window], signup_time[in_window])
        orders, items, cancellations = self._order_frames(orders_customer, orders_k, orders_time)
        lifecycle_dropout = np.full(size, "", dtype=object)
        dropped = ~np.isnan(dropout_time)
        lifecycle_dropout[dropped] = self._date_strings(
            np.floor(dropout_time[dropped]).astype(np.int64)
        )
        lifecycles = pd.DataFrame(
            {
                "customer_id": customer_ids,
                "purchase_rate_per_day": np.round(rate, 6),
                "dropout_probability": np.round(dropout, 6),
                "dropout_date": lifecycle_dropout,
            }
        )
        return ShopActivity(customers, orders, items, cancellations, lifecycles)

    def _purchases(
        self,
        customer_ids: np.ndarray,
        signup_time: np.ndarray,
        rate: np.ndarray,
        dropout: np.ndarray,
        never: np.ndarray,
        window_start: int,
        window_end: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Walk every customer's purchase sequence up to the window's end.

        Returns the orders inside the window (customer, sequence number, time in days since
        the epoch) and each customer's true dropout time (NaN if still alive at the end).
        """
        seed = self.settings.seed
        dropout_time = np.full(len(customer_ids), np.nan)
        # Customers who never buy drop out at signup.
        dropout_time[never] = signup_time[never]
        alive = np.flatnonzero(~never & (signup_time < window_end))
        time = signup_time[alive].copy()
        found_customer, found_k, found_time = [], [], []
        k = 0
        while alive.size:
            ids = customer_ids[alive]
            time += -np.log(uniform(seed, _S_GAP, ids, k)) / rate[alive]
            inside = time < window_end
            alive, time, ids = alive[inside], time[inside], ids[inside]
            emit = time >= window_start
            found_customer.append(ids[emit])
            found_k.append(np.full(int(emit.sum()), k, dtype=np.int64))
            found_time.append(time[emit])
            drops = uniform(seed, _S_DROP, ids, k) < dropout[alive]
            if k + 1 >= MAX_ORDERS_PER_CUSTOMER:
                drops[:] = True
            dropout_time[alive[drops]] = time[drops]
            alive, time = alive[~drops], time[~drops]
            k += 1
        if not found_customer:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0), dropout_time
        customer = np.concatenate(found_customer)
        sequence = np.concatenate(found_k)
        order_time = np.concatenate(found_time)
        order = np.lexsort((sequence, customer))
        return customer[order], sequence[order], order_time[order], dropout_time

    def _customer_frame(self, customer_ids: np.ndarray, signup_time: np.ndarray) -> pd.DataFrame:
        first, last, domains = self._name_pools
        seed = self.settings.seed
        first_pick = np.floor(uniform(seed, _S_NAME, customer_ids, 1) * len(first)).astype(int)
        last_pick = np.floor(uniform(seed, _S_NAME, customer_ids, 2) * len(last)).astype(int)
        domain_pick = np.floor(uniform(seed, _S_NAME, customer_ids, 3) * len(domains)).astype(int)
        first_slugs = [_ascii_slug(name) for name in first]
        last_slugs = [_ascii_slug(name) for name in last]
        names = [f"{first[f]} {last[la]}" for f, la in zip(first_pick, last_pick, strict=True)]
        # The customer id makes every email unique, whatever names collide.
        emails = [
            f"{first_slugs[f]}.{last_slugs[la]}{cid}@{domains[d]}"
            for f, la, cid, d in zip(first_pick, last_pick, customer_ids, domain_pick, strict=True)
        ]
        return pd.DataFrame(
            {
                "customer_id": customer_ids,
                "name": names,
                "email": emails,
                "signup_date": self._date_strings(np.floor(signup_time).astype(np.int64)),
                "signed_up_at": self._timestamp_strings(signup_time),
            }
        )

    def _order_frames(
        self, customer: np.ndarray, sequence: np.ndarray, order_time: np.ndarray
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        seed = self.settings.seed
        order_ids = customer * ORDER_ID_STRIDE + sequence
        order_day = np.floor(order_time).astype(np.int64)
        cancelled = uniform(seed, _S_CANCEL, order_ids) < CANCELLATION_RATE
        orders = pd.DataFrame(
            {
                "order_id": order_ids,
                "customer_id": customer,
                "order_date": self._date_strings(order_day),
                "ordered_at": self._timestamp_strings(order_time),
                "status": np.where(cancelled, "cancelled", "completed"),
            }
        )

        # 1-4 lines an order, 1-3 units a line, products drawn by popularity.
        line_counts = 1 + np.floor(uniform(seed, _S_ITEMS, order_ids) * 4).astype(np.int64)
        item_order = np.repeat(order_ids, line_counts)
        offsets = np.cumsum(line_counts) - line_counts
        line_number = np.arange(len(item_order)) - np.repeat(offsets, line_counts) + 1
        product_index = np.searchsorted(
            self._popularity_cdf, uniform(seed, _S_PRODUCT, item_order, line_number)
        )
        product_index = np.minimum(product_index, self.settings.products - 1)
        prices = self._catalogue_prices
        items = pd.DataFrame(
            {
                "order_id": item_order,
                "line_number": line_number,
                "product_id": product_index + 1,
                "quantity": 1 + np.floor(uniform(seed, _S_QTY, item_order, line_number) * 3),
                "unit_price": prices[product_index],
            }
        )
        items["quantity"] = items["quantity"].astype(np.int64)

        # A cancellation happens later on the day of its order.
        cancelled_ids = order_ids[cancelled]
        placed = order_time[cancelled]
        end_of_day = np.floor(placed) + 1
        delay = (end_of_day - placed) * uniform(seed, _S_CANCEL_TIME, cancelled_ids)
        cancelled_time = placed + np.maximum(delay, 1 / 86_400)
        cancelled_time = np.minimum(cancelled_time, end_of_day - 1 / 86_400)
        reason_pick = np.floor(
            uniform(seed, _S_REASON, cancelled_ids) * len(CANCEL_REASONS)
        ).astype(int)
        cancellations = pd.DataFrame(
            {
                "order_id": cancelled_ids,
                "cancel_reason": np.asarray(CANCEL_REASONS)[reason_pick],
                "cancelled_at": self._timestamp_strings(cancelled_time),
            }
        )
        return orders, items, cancellations

    @cached_property
    def _catalogue_prices(self) -> np.ndarray:
        return self.products()["price"].to_numpy()
