"""One PostgreSQL database: its settings, its URL, and connections to it.

`Warehouse` is the one settings type for a database, whether it comes from a Prefect
block, a URL in `.env`, the embedded server or a test. Its password never prints: it is
kept out of repr, out of `display_url()` and out of every error raised here.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import psycopg

from churn.redaction import first_line, redact

DEFAULT_PORT = 5432
CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 10
URL_SHAPE = "postgresql://user:password@host:5432/database"
ENCODING_HINT = "percent-encode special characters in the user name and password"
# Schemes people write for PostgreSQL; connections always use psycopg 3.
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})

logger = logging.getLogger(__name__)


class InvalidWarehouseUrl(ValueError):
    """A warehouse URL that cannot be used; the message is one line and holds no secret."""


class WarehouseUnavailable(RuntimeError):
    """The warehouse could not be reached after a few attempts."""


@dataclass(frozen=True)
class Warehouse:
    """Connection settings for one PostgreSQL database; the password never prints.

    `host` is a name, an address, or (a path starting with /) the folder of a Unix
    socket, as libpq reads it. `options` are further libpq parameters (sslmode, ...).
    `origin` says where the settings came from, for log lines.
    """

    host: str
    port: int = DEFAULT_PORT
    user: str = "postgres"
    database: str = "postgres"
    password: str | None = field(default=None, repr=False)
    options: Mapping[str, str] = field(default_factory=dict)
    origin: str = "URL"

    def display_url(self) -> str:
        """A connection string without the password, safe for logs."""
        user = quote(self.user, safe="")
        database = quote(self.database, safe="")
        if self.host.startswith("/"):
            return f"postgresql://{user}@/{database}?host={self.host}&port={self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{user}@{host}:{self.port}/{database}"

    def with_database(self, database: str, origin: str | None = None) -> Warehouse:
        """The same server and login, another database."""
        return dataclasses.replace(self, database=database, origin=origin or self.origin)

    def connect(
        self,
        *,
        autocommit: bool = False,
        attempts: int = CONNECT_ATTEMPTS,
        timeout_seconds: int = CONNECT_TIMEOUT_SECONDS,
        application_name: str = "churn-pipeline",
    ) -> psycopg.Connection:
        """Open a connection, retrying a few times: a warehouse can be briefly unreachable."""
        delay = 1.0
        options: dict[str, Any] = dict(self.options)
        for attempt in range(1, attempts + 1):
            try:
                return psycopg.connect(
                    host=self.host,
                    port=self.port,
                    user=self.user,
                    password=self.password or None,
                    dbname=self.database,
                    connect_timeout=timeout_seconds,
                    autocommit=autocommit,
                    application_name=application_name,
                    **options,
                )
            except psycopg.OperationalError as error:
                reason = redact(first_line(str(error)), [self.password])
                if attempt == attempts:
                    tries = f"after {attempts} attempts" if attempts > 1 else "in one attempt"
                    raise WarehouseUnavailable(
                        f"cannot reach the warehouse at {self.display_url()} {tries}: {reason}"
                    ) from None
                logger.warning(
                    "Warehouse not reachable (attempt %d of %d): %s", attempt, attempts, reason
                )
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def dbt_env(self) -> dict[str, str]:
        """Environment variables that dbt's profiles.yml reads (the password as a dbt secret)."""
        return {
            "CHURN_WAREHOUSE_HOST": self.host,
            "CHURN_WAREHOUSE_PORT": str(self.port),
            "CHURN_WAREHOUSE_USER": self.user,
            "CHURN_WAREHOUSE_DATABASE": self.database,
            "DBT_ENV_SECRET_WAREHOUSE_PASSWORD": self.password or "",
        }


def parse_warehouse_url(
    url: str, origin: str = "URL", subject: str = "the warehouse URL"
) -> Warehouse:
    """Parse `postgresql://user:password@host:port/database[?param=value]`.

    A Unix socket folder may be given as `?host=/path` (as pgserver and libpq write it);
    other query parameters are kept as libpq options. The URL is never echoed in an
    error, since it may carry the password.
    """
    if "://" not in url:
        raise InvalidWarehouseUrl(f"{subject} is not a URL; expected {URL_SHAPE}")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidWarehouseUrl(
            f"{subject} is malformed; expected {URL_SHAPE} ({ENCODING_HINT})"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in POSTGRES_SCHEMES:
        shown = scheme[:30] if re.fullmatch(r"[a-z0-9+.-]*", scheme) else "?"
        raise InvalidWarehouseUrl(
            f"{subject} must be a PostgreSQL URL ({URL_SHAPE}), not {shown}://..."
        )
    try:
        port = parts.port
    except ValueError:
        # urlsplit reads an unencoded ':' or '/' in a password as the start of a port.
        raise InvalidWarehouseUrl(
            f"{subject} has an invalid port; expected {URL_SHAPE} ({ENCODING_HINT})"
        ) from None
    if port == 0:
        raise InvalidWarehouseUrl(f"{subject} has an invalid port (0)")
    if parts.fragment:
        raise InvalidWarehouseUrl(f"{subject} is malformed ({ENCODING_HINT}, e.g. '#' as %23)")
    try:
        options = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        raise InvalidWarehouseUrl(f"{subject} has malformed query parameters (after '?')") from None
    host = parts.hostname or options.pop("host", "")
    options.pop("host", None)
    if not host:
        raise InvalidWarehouseUrl(f"{subject} has no host; expected {URL_SHAPE}")
    if port is None and options.get("port", "").isdigit():
        port = int(options["port"])
    options.pop("port", None)
    username = unquote(parts.username) if parts.username else ""
    if not username:
        raise InvalidWarehouseUrl(f"{subject} has no user name; expected {URL_SHAPE}")
    database = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if not database:
        raise InvalidWarehouseUrl(f"{subject} has no database name; expected {URL_SHAPE}")
    if "/" in database:
        raise InvalidWarehouseUrl(
            f"{subject} has a malformed database name; expected {URL_SHAPE} ({ENCODING_HINT})"
        )
    password = unquote(parts.password) if parts.password else None
    return Warehouse(
        host=host,
        port=port or DEFAULT_PORT,
        user=username,
        database=database,
        password=password or None,
        options=options,
        origin=origin,
    )
