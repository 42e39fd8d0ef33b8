"""Importing a folder or file of exports: read, check, land, or refuse with one line."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from churn.importing.contract import ImportRefused
from churn.importing.files import FileRejected, Rejection
from churn.importing.landing import Landed, check, merge, prepare_raw, record, stage
from churn.importing.tables import ImportTables, read_tables
from churn.warehouse.connection import Warehouse
from churn.warehouse.raw import landing_transaction

SHOWN_REJECTIONS = 20
REJECTED_ROWS_FILE = "rejected_rows.csv"


@dataclass(frozen=True)
class ImportResult:
    """What an import read and what it changed in raw."""

    source: str
    form: str
    files: list[str]
    rows_read: dict[str, int]
    derived: list[str]
    landed: Landed
    note: str | None = None

    def summary(self) -> str:
        read = ", ".join(f"{rows:,} {table}" for table, rows in self.rows_read.items())
        if not self.landed.changed:
            return f"{self.source} ({self.form}: {read}): nothing new, raw unchanged"
        changed = ", ".join(f"{rows:,} {table}" for table, rows in self.landed.changed.items())
        since = f" from {self.landed.first_day}" if self.landed.first_day else ""
        return f"{self.source} ({self.form}: {read}): changed {changed}{since}"


def write_rejections(rejections: list[Rejection], directory: Path) -> Path:
    """Every rejected row, as CSV: file, line, column, reason, value."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REJECTED_ROWS_FILE
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "line", "column", "reason", "value"])
        for rejection in rejections:
            writer.writerow(
                [rejection.file, rejection.line or "", rejection.column, rejection.reason,
                 rejection.value or ""]
            )  # fmt: skip
    return path


def refusal(rejections: list[Rejection], rows: int, directory: Path) -> ImportRefused:
    """The one-line error of a refused import; every rejection is written to a file."""
    first = rejections[0].describe()
    if len(rejections) == 1 and rejections[0].line is None:  # a file as a whole
        return ImportRefused(f"import refused, nothing landed: {first}")
    rejections = sorted(rejections, key=lambda r: (r.file, r.line or 0, r.column))
    first = rejections[0].describe()
    path = write_rejections(rejections, directory)
    files = ", ".join(sorted({rejection.file for rejection in rejections}))
    bad_rows = len({(rejection.file, rejection.line) for rejection in rejections})
    problems = len(rejections)
    what = f"{bad_rows:,} bad row{'s' if bad_rows > 1 else ''}" + (f" of {rows:,}" if rows else "")
    if problems > bad_rows:
        what += f" ({problems:,} problems)"
    return ImportRefused(
        f"import refused, nothing landed: {what} in {files}; first: {first}; all of them in {path}"
    )


def import_exports(
    warehouse: Warehouse,
    path: Path,
    *,
    output_dir: Path,
    replace_raw: bool = False,
) -> ImportResult:
    """Check the export files at `path` and land them in raw, or refuse them whole.

    Raises ImportRefused (one line) when a file or row breaks the contract, or raw holds
    a simulated shop and `replace_raw` is not set; raw is then unchanged.
    """
    try:
        tables: ImportTables = read_tables(path)
    except FileRejected as error:
        raise refusal([error.rejection], 0, output_dir) from None
    if tables.rejections:
        raise refusal(tables.rejections, 0, output_dir)
    source = str(path)
    with landing_transaction(warehouse) as conn:
        note = prepare_raw(conn, replace_raw)
        stage(conn, tables)
        rejections = check(conn)
        if rejections:
            # raising rolls the landing transaction back: raw is untouched
            raise refusal(rejections, tables.rows, output_dir)
        landed = merge(conn, tables)
        record(conn, source, tables, landed)
    return ImportResult(
        source=source,
        form=tables.form,
        files=tables.files,
        rows_read={name: table.num_rows for name, table in tables.tables.items()},
        derived=sorted(tables.derived),
        landed=landed,
        note=note,
    )


def rejected_rows_dir(base: Path) -> Path:
    """Where a run's rejected rows go: a folder per import attempt."""
    return base / dt.datetime.now().strftime("%Y%m%dT%H%M%S%f")
