"""A deterministic, incremental simulation of a shop's activity.

Customers sign up over time, buy at their own pace and drop out after a purchase with
their own probability (a BG/NBD-style process). Every random draw is either a pure
function of (seed, stream, key) or comes from a generator seeded by a fixed-size block of
customer ids, so a customer's whole life depends only on the seed and the simulation's
epoch, never on the window being generated. That is what makes generating [t0, t2) at
once equal to generating [t0, t1) then [t1, t2).

Nothing here touches a database or the file system: it yields Arrow tables.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from faker import Faker

from churn.hashing import mix64
from churn.simulation.settings import ShopSettings

CUSTOMER_BLOCK = 65_536  # customers sharing one trait generator: defines the data
GENERATION_CHUNK = 8_192  # customers generated at a time: bounds memory, not the data
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
_STATUSES = pa.array(["completed", "cancelled"], pa.string())  # indexed by "is cancelled"
_CANCEL_REASONS = pa.array(CANCEL_REASONS, pa.string())

# Counter-based streams: each kind of draw has its own stream number.
_S_GAP, _S_DROP, _S_CANCEL, _S_ITEMS, _S_PRODUCT, _S_QTY = 1, 2, 3, 4, 5, 6
_S_CANCEL_TIME, _S_REASON, _S_COST, _S_MARKUP, _S_CATEGORY, _S_NAME = 7, 8, 9, 10, 11, 12
_S_SIGNUP_TIME, _S_POPULARITY, _S_NOUN, _S_COLOR = 13, 14, 15, 16


def cancellation_seconds(order_time: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """When each order is cancelled, in whole seconds since the epoch (as stored).

    Later on the day of the order, by a share `draw` in [0, 1) of what is left of it; an
    order placed in the day's last second is cancelled in that same second, never before.
    """
    placed = np.floor(order_time * 86_400).astype(np.int64)
    last_second = (np.floor(order_time).astype(np.int64) + 1) * 86_400 - 1
    delay = np.floor((last_second - placed) * draw).astype(np.int64)
    return np.minimum(placed + np.maximum(delay, 1), last_second)


def uniform(seed: int, stream: int, key: np.ndarray, sub: np.ndarray | int = 0) -> np.ndarray:
    """Uniform draws in (0, 1) that depend only on (seed, stream, key, sub)."""
    with np.errstate(over="ignore"):
        base = mix64(np.asarray([seed * 1_000_003 + stream], dtype=np.uint64))[0]
        x = mix64(np.asarray(key, dtype=np.uint64) ^ base)
        x = mix64(x + np.asarray(sub, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


@dataclass(frozen=True)
class ShopActivity:
    """One chunk of generated rows, each table typed and ordered exactly like its raw table."""

    customers: pa.Table
    orders: pa.Table
    order_items: pa.Table
    cancellations: pa.Table
    lifecycles: pa.Table


# Typed columns (dates as date32, timestamps as timestamp[s]) let the CSV writer format
# them in C++; strings built in Python or NumPy were most of the generation time.
RAW_SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            ("customer_id", pa.int64()),
            ("name", pa.string()),
            ("email", pa.string()),
            ("signup_date", pa.date32()),
            ("signed_up_at", pa.timestamp("s")),
        ]
    ),
    "products": pa.schema(
        [
            ("product_id", pa.int64()),
            ("name", pa.string()),
            ("category", pa.string()),
            ("cost", pa.float64()),
            ("price", pa.float64()),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("order_date", pa.date32()),
            ("ordered_at", pa.timestamp("s")),
            ("status", pa.string()),
        ]
    ),
    "order_items": pa.schema(
        [
            ("order_id", pa.int64()),
            ("line_number", pa.int64()),
            ("product_id", pa.int64()),
            ("quantity", pa.int64()),
            ("unit_price", pa.float64()),
        ]
    ),
    "cancellations": pa.schema(
        [
            ("order_id", pa.int64()),
            ("cancel_reason", pa.string()),
            ("cancelled_at", pa.timestamp("s")),
        ]
    ),
}
# The true dropout date is null while the customer is still alive.
LIFECYCLE_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("purchase_rate_per_day", pa.float64()),
        ("dropout_probability", pa.float64()),
        ("dropout_date", pa.date32()),
    ]
)
RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(schema.names) for name, schema in RAW_SCHEMAS.items()
}
LIFECYCLE_COLUMNS: tuple[str, ...] = tuple(LIFECYCLE_SCHEMA.names)


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


@dataclass(frozen=True)
class _CustomerTraits:
    """Behavioural traits of one block of customers, indexed by position in the block."""

    purchase_rate: np.ndarray
    dropout_probability: np.ndarray
    never_buys: np.ndarray


class ShopSimulation:
    """Generates any window [start, end) of one shop's life, identically every time."""

    def __init__(self, settings: ShopSettings) -> None:
        self.settings = settings

    # -- calendar -------------------------------------------------------------------------

    def _day_index(self, day: dt.date) -> int:
        return (day - self.settings.epoch).days

    def _dates(self, day_offsets: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
        """Days since the epoch as dates; null where `missing` is true."""
        epoch = np.datetime64(self.settings.epoch, "D")
        days = epoch + day_offsets.astype("timedelta64[D]")
        return pa.array(days, type=pa.date32(), mask=missing)

    def _timestamps(self, times: np.ndarray) -> pa.Array:
        """Times in days since the epoch, truncated to the second."""
        return self._timestamps_of_seconds(np.floor(times * 86_400).astype(np.int64))

    def _timestamps_of_seconds(self, seconds: np.ndarray) -> pa.Array:
        """Whole seconds since the epoch, as timestamps."""
        epoch = np.datetime64(self.settings.epoch, "s")
        return pa.array(epoch + seconds.astype("timedelta64[s]"), type=pa.timestamp("s"))

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

    def products(self) -> pa.Table:
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
        return pa.Table.from_arrays(
            [ids, names, categories.tolist(), cost, price], schema=RAW_SCHEMAS["products"]
        )

    @cached_property
    def _popularity_cdf(self) -> np.ndarray:
        ids = np.arange(1, self.settings.products + 1, dtype=np.int64)
        # A long tail: a few products sell much more than the rest.
        weights = uniform(self.settings.seed, _S_POPULARITY, ids) ** 3 + 0.02
        cdf = np.cumsum(weights)
        return cdf / cdf[-1]

    def _faker(self, stream: int) -> Faker:
        """A Faker seeded for one pool of values.

        A shared Faker would make each pool depend on which was drawn first, the
        catalogue's colours or the customers' names.
        """
        fake = Faker(self.settings.locale)
        fake.seed_instance(self.settings.seed * 1_000_003 + stream)
        return fake

    @cached_property
    def _colours(self) -> list[str]:
        fake = self._faker(_S_COLOR)
        return sorted({fake.color_name() for _ in range(200)})

    @cached_property
    def _name_pools(self) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array, pa.Array]:
        """First and last names, their ASCII slugs for emails, and email domains."""
        fake = self._faker(_S_NAME)
        first = sorted({fake.first_name() for _ in range(3000)})
        last = sorted({fake.last_name() for _ in range(3000)})
        domains = sorted({fake.free_email_domain() for _ in range(200)})
        return (
            pa.array(first, pa.string()),
            pa.array(last, pa.string()),
            pa.array([_ascii_slug(name) for name in first], pa.string()),
            pa.array([_ascii_slug(name) for name in last], pa.string()),
            pa.array(domains, pa.string()),
        )

    @cached_property
    def _catalogue_prices(self) -> np.ndarray:
        return self.products().column("price").to_numpy()

    # -- customers and orders -------------------------------------------------------------

    def generate(self, start: dt.date, end: dt.date) -> Iterator[ShopActivity]:
        """Yield the shop's activity in [start, end), one chunk of customers at a time.

        Customers are those who signed up in the window; orders, items and cancellations
        those of orders placed in the window; lifecycles hold every customer known by
        `end` with their true dropout date if it happened before `end`. Chunks hold at
        most GENERATION_CHUNK customers, so memory does not grow with the shop's size.
        """
        if end <= start:
            raise ValueError(f"empty window: {start} >= {end}")
        if start < self.settings.epoch:
            raise ValueError(f"window starts before the shop opened ({self.settings.epoch})")
        # Customers are numbered in signup order; the running total of signups maps a
        # customer's number to its signup day without materialising one entry per customer.
        signed_up_by = np.cumsum(self.signups_per_day(end))
        total = int(signed_up_by[-1]) if signed_up_by.size else 0
        window = (self._day_index(start), self._day_index(end))
        for block_start in range(0, total, CUSTOMER_BLOCK):
            traits = self._block_traits(block_start // CUSTOMER_BLOCK)
            block_end = min(block_start + CUSTOMER_BLOCK, total)
            for chunk_start in range(block_start, block_end, GENERATION_CHUNK):
                chunk_end = min(chunk_start + GENERATION_CHUNK, block_end)
                numbers = np.arange(chunk_start, chunk_end, dtype=np.int64)
                signup_day = np.searchsorted(signed_up_by, numbers, side="right")
                in_block = slice(chunk_start - block_start, chunk_end - block_start)
                yield self._generate_chunk(numbers + 1, signup_day, traits, in_block, window)

    def _block_traits(self, block_number: int) -> _CustomerTraits:
        # Drawn for the full block from a generator seeded by the block, so a customer's
        # traits never depend on how many customers exist yet or on the chunk size.
        rng = np.random.default_rng([self.settings.seed, 2, block_number])
        rate = rng.gamma(shape=2.2, scale=0.115 / 2.2, size=CUSTOMER_BLOCK)
        dropout = rng.beta(1.1, 16.0, size=CUSTOMER_BLOCK)
        never = rng.random(CUSTOMER_BLOCK) < NEVER_BUYER_SHARE
        return _CustomerTraits(np.clip(rate, 1 / 400, 0.5), dropout, never)

    def _generate_chunk(
        self,
        customer_ids: np.ndarray,
        days: np.ndarray,
        traits: _CustomerTraits,
        in_block: slice,
        window: tuple[int, int],
    ) -> ShopActivity:
        seed = self.settings.seed
        rate = traits.purchase_rate[in_block]
        dropout = traits.dropout_probability[in_block]
        never = traits.never_buys[in_block]
        signup_time = days + uniform(seed, _S_SIGNUP_TIME, customer_ids)

        window_start, window_end = window
        orders_customer, orders_k, orders_time, dropout_time = self._purchases(
            customer_ids, signup_time, rate, dropout, never, window_start, window_end
        )

        in_window = (days >= window_start) & (days < window_end)
        customers = self._customer_table(customer_ids[in_window], signup_time[in_window])
        orders, items, cancellations = self._order_tables(orders_customer, orders_k, orders_time)
        alive = np.isnan(dropout_time)
        dropout_day = np.floor(np.where(alive, 0.0, dropout_time)).astype(np.int64)
        lifecycles = pa.Table.from_arrays(
            [
                customer_ids,
                np.round(rate, 6),
                np.round(dropout, 6),
                self._dates(dropout_day, missing=alive),
            ],
            schema=LIFECYCLE_SCHEMA,
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

    def _customer_table(self, customer_ids: np.ndarray, signup_time: np.ndarray) -> pa.Table:
        first, last, first_slugs, last_slugs, domains = self._name_pools
        seed = self.settings.seed
        first_pick = np.floor(uniform(seed, _S_NAME, customer_ids, 1) * len(first)).astype(int)
        last_pick = np.floor(uniform(seed, _S_NAME, customer_ids, 2) * len(last)).astype(int)
        domain_pick = np.floor(uniform(seed, _S_NAME, customer_ids, 3) * len(domains)).astype(int)
        names = pc.binary_join_element_wise(first.take(first_pick), last.take(last_pick), " ")
        # The customer id makes every email unique, whatever names collide.
        emails = pc.binary_join_element_wise(
            first_slugs.take(first_pick),
            ".",
            last_slugs.take(last_pick),
            pc.cast(pa.array(customer_ids), pa.string()),
            "@",
            domains.take(domain_pick),
            "",
        )
        return pa.Table.from_arrays(
            [
                customer_ids,
                names,
                emails,
                self._dates(np.floor(signup_time).astype(np.int64)),
                self._timestamps(signup_time),
            ],
            schema=RAW_SCHEMAS["customers"],
        )

    def _order_tables(
        self, customer: np.ndarray, sequence: np.ndarray, order_time: np.ndarray
    ) -> tuple[pa.Table, pa.Table, pa.Table]:
        seed = self.settings.seed
        order_ids = customer * ORDER_ID_STRIDE + sequence
        order_day = np.floor(order_time).astype(np.int64)
        cancelled = uniform(seed, _S_CANCEL, order_ids) < CANCELLATION_RATE
        orders = pa.Table.from_arrays(
            [
                order_ids,
                customer,
                self._dates(order_day),
                self._timestamps(order_time),
                _STATUSES.take(cancelled.astype(np.int8)),
            ],
            schema=RAW_SCHEMAS["orders"],
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
        quantity = 1 + np.floor(uniform(seed, _S_QTY, item_order, line_number) * 3)
        items = pa.Table.from_arrays(
            [
                item_order,
                line_number,
                product_index + 1,
                quantity.astype(np.int64),
                self._catalogue_prices[product_index],
            ],
            schema=RAW_SCHEMAS["order_items"],
        )

        cancelled_ids = order_ids[cancelled]
        cancelled_seconds = cancellation_seconds(
            order_time[cancelled], uniform(seed, _S_CANCEL_TIME, cancelled_ids)
        )
        reason_pick = np.floor(
            uniform(seed, _S_REASON, cancelled_ids) * len(CANCEL_REASONS)
        ).astype(int)
        cancellations = pa.Table.from_arrays(
            [
                cancelled_ids,
                _CANCEL_REASONS.take(reason_pick),
                self._timestamps_of_seconds(cancelled_seconds),
            ],
            schema=RAW_SCHEMAS["cancellations"],
        )
        return orders, items, cancellations
