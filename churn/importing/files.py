"""Reading a shop's export files (CSV or Parquet) and parsing their values by the contract.

Every problem becomes a `Rejection` naming the file, the line (CSV: the header is line
1) or row (Parquet), the column and the reason, so a person can find and fix it. Values
are parsed column by column with Arrow; only a column that fails is looked at value by
value, to name its bad rows.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from churn.importing.contract import STATUS_SPELLINGS, Column, Kind

MAX_SHOWN_VALUE_CHARS = 40
_WHOLE_NUMBER = r"^[+-]?[0-9]{1,18}$"
_DECIMAL = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIME_ZONE = re.compile(r"(Z|[+-][0-9]{2}:?[0-9]{2})$")


@dataclass(frozen=True)
class Rejection:
    """One bad row (or file): where it is and why it was refused."""

    file: str
    line: int | None  # CSV line or Parquet row; None for the file as a whole
    column: str
    reason: str
    value: str | None = None

    def describe(self) -> str:
        # a CSV file's lines count its header; a Parquet file's rows do not
        unit = "row" if self.file.lower().endswith(".parquet") else "line"
        where = self.file if self.line is None else f"{self.file} {unit} {self.line}"
        column = f", column {self.column}" if self.column else ""
        shown = f" ({_shown(self.value)})" if self.value is not None else ""
        return f"{where}{column}: {self.reason}{shown}"


def _shown(value: str) -> str:
    text = " ".join(str(value).split())
    if len(text) > MAX_SHOWN_VALUE_CHARS:
        text = text[: MAX_SHOWN_VALUE_CHARS - 1] + "…"
    return repr(text)


class FileRejected(Exception):
    """A file that cannot be read at all; `rejection` says why."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.describe())
        self.rejection = rejection


@dataclass(frozen=True)
class InputFile:
    """One export file, read: its rows as Arrow, with where each row came from."""

    path: Path
    rows: pa.Table

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_csv(self) -> bool:
        return self.path.suffix.lower() == ".csv"

    @property
    def position_word(self) -> str:
        return "line" if self.is_csv else "row"

    def positions(self) -> np.ndarray:
        """Each row's line (CSV, the header being line 1) or row number (Parquet)."""
        first = 2 if self.is_csv else 1
        return np.arange(first, first + self.rows.num_rows, dtype=np.int64)


def _check_utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8, naming the line of its first bad byte."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                line += chunk[: error.start].count(b"\n")
                raise FileRejected(
                    Rejection(path.name, line, "", "not UTF-8 text (save the file as UTF-8)")
                ) from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FileRejected(
                Rejection(path.name, line, "", "not UTF-8 text (save the file as UTF-8)")
            ) from None


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        row = next(csv.reader(file), None)
    if not row or not any(name.strip() for name in row):
        raise FileRejected(Rejection(path.name, 1, "", "has no header line"))
    return row


def _first_bad_line(path: Path, columns: int) -> int | None:
    with path.open(encoding="utf-8-sig", newline="") as file:
        for number, row in enumerate(csv.reader(file), start=1):
            if row and len(row) != columns:
                return number
    return None


def read_csv(path: Path) -> InputFile:
    """Read a CSV file's rows as text, for parsing by the contract."""
    if path.stat().st_size == 0:
        raise FileRejected(Rejection(path.name, None, "", "is empty"))
    _check_utf8(path)
    header = _header(path)
    names = [name.strip().lower() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise FileRejected(
            Rejection(path.name, 1, ", ".join(repeated), "the header repeats a column")
        )
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid as error:
        line = _first_bad_line(path, len(names))
        reason = f"cannot be read as CSV ({str(error).splitlines()[0]})"
        if line is not None:
            reason = f"has another number of fields than the header's {len(names)}"
        raise FileRejected(Rejection(path.name, line, "", reason)) from None
    if table.num_rows == 0:
        raise FileRejected(Rejection(path.name, None, "", "holds a header but no rows"))
    return InputFile(path, table)


def read_parquet(path: Path) -> InputFile:
    """Read a Parquet file's rows (typed as written)."""
    if path.stat().st_size == 0:
        raise FileRejected(Rejection(path.name, None, "", "is empty"))
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        reason = f"cannot be read as Parquet ({str(error).splitlines()[0]})"
        raise FileRejected(Rejection(path.name, None, "", reason)) from None
    table = table.rename_columns([name.strip().lower() for name in table.column_names])
    if table.num_rows == 0:
        raise FileRejected(Rejection(path.name, None, "", "holds no rows"))
    return InputFile(path, table)


def read_input_file(path: Path) -> InputFile:
    return read_csv(path) if path.suffix.lower() == ".csv" else read_parquet(path)


# -- values ---------------------------------------------------------------------------------


@dataclass
class ParsedColumn:
    """A column's values as their raw type, and the rows whose value was refused."""

    values: pa.Array
    bad: np.ndarray  # bool per row
    reason: str


def _as_text(array: pa.Array) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(array.cast(pa.string()))
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _mask(array: pa.Array) -> np.ndarray:
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _value_by_value(
    text: pa.Array, candidate: np.ndarray, parse: Callable[[str], object], target: pa.DataType
) -> tuple[pa.Array, np.ndarray]:
    """Parse each candidate value in Python (the slow path, after a failed column cast)."""
    values: list[object] = []
    bad = np.zeros(len(text), dtype=bool)
    for index, value in enumerate(text.to_pylist()):
        if value is None or not candidate[index]:
            values.append(None)
            continue
        try:
            values.append(parse(value))
        except ValueError:
            values.append(None)
            bad[index] = True
    return pa.array(values, type=target), bad


def _cast_or_locate(
    text: pa.Array, candidate: np.ndarray, target: pa.DataType, parse: Callable[[str], object]
) -> tuple[pa.Array, np.ndarray]:
    """Cast the candidate values; when the cast fails, find which values made it fail."""
    kept = pc.if_else(pa.array(candidate), text, pa.scalar(None, pa.string()))
    try:
        return kept.cast(target), np.zeros(len(text), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _value_by_value(text, candidate, parse, target)


def _date_part(value: str) -> str:
    # "2026-01-02 10:00:00" in a date column: the day is what counts
    return value[:10] if len(value) > 10 and value[10] in " T" else value


def _parse_timestamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("T", " "))


def parse_text_values(text: pa.Array, kind: Kind) -> ParsedColumn:
    """Values given as text (CSV, or text in Parquet), parsed to their raw type."""
    present = ~np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if kind == "text":
        return ParsedColumn(text, np.zeros(len(text), dtype=bool), "")
    if kind == "status":
        spelled = pc.utf8_lower(text)
        known = pc.is_in(spelled, value_set=pa.array(list(STATUS_SPELLINGS)))
        mapped = pc.replace_substring(spelled, "canceled", "cancelled")
        bad = present & ~_mask(known)
        return ParsedColumn(mapped, bad, "not an order status (completed or cancelled)")
    if kind in ("id", "count"):
        shaped = present & _mask(pc.match_substring_regex(text, _WHOLE_NUMBER))
        values, failed = _cast_or_locate(text, shaped, pa.int64(), int)
        bad = (present & ~shaped) | failed
        if kind == "count":
            positive = _mask(pc.greater(values, 0))
            bad |= present & ~bad & ~positive
            return ParsedColumn(values, bad, "not a whole number above 0")
        return ParsedColumn(values, bad, "not a whole number")
    if kind == "amount":
        shaped = present & _mask(pc.match_substring_regex(text, _DECIMAL))
        numbers, failed = _cast_or_locate(text, shaped, pa.float64(), float)
        not_negative = _mask(pc.greater_equal(numbers, 0.0))
        bad = (present & ~shaped) | failed | (present & ~not_negative)
        return ParsedColumn(text, bad, "not an amount of 0 or more (e.g. 12.50)")
    if kind == "date":
        days = pc.utf8_slice_codeunits(text, 0, 10)
        shaped = present & _mask(pc.match_substring_regex(days, _DATE))
        values, failed = _cast_or_locate(
            days, shaped, pa.date32(), lambda value: dt.date.fromisoformat(_date_part(value))
        )
        return ParsedColumn(values, (present & ~shaped) | failed, "not a date (YYYY-MM-DD)")
    # timestamp: local shop time, no zone offset
    zoned = present & _mask(pc.match_substring_regex(text, _TIME_ZONE.pattern))
    microseconds, failed = _cast_or_locate(
        text, present & ~zoned, pa.timestamp("us"), _parse_timestamp
    )
    values = microseconds.cast(pa.timestamp("s"), safe=False)
    bad = zoned | failed
    return ParsedColumn(values, bad, "not a date and time (YYYY-MM-DD HH:MM[:SS], shop time)")


_TYPED = {
    "id": pa.types.is_integer,
    "count": pa.types.is_integer,
    "amount": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t),
    "date": lambda t: pa.types.is_date(t) or pa.types.is_timestamp(t),
    "timestamp": lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t),
}


def parse_values(array: pa.Array, column: Column) -> ParsedColumn:
    """A column parsed by its kind; text is parsed, Parquet's own types are converted."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        parsed = parse_text_values(_as_text(array), column.kind)
    elif column.kind in _TYPED and _TYPED[column.kind](array.type):
        parsed = _parse_typed(array, column.kind)
    elif column.kind in ("text", "status"):
        parsed = parse_text_values(_as_text(array.cast(pa.string())), column.kind)
    else:
        parsed = ParsedColumn(
            pa.nulls(len(array)),
            ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool),
            f"a {array.type} column where {column.rule} is expected",
        )
    if not column.nullable:
        empty = np.asarray(parsed.values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        missing = empty & ~parsed.bad
        if missing.any():  # told apart from bad values by rejections_of
            parsed = ParsedColumn(parsed.values, parsed.bad | missing, parsed.reason)
    return parsed


def _parse_typed(array: pa.Array, kind: Kind) -> ParsedColumn:
    no_rows_bad = np.zeros(len(array), dtype=bool)
    if kind in ("id", "count"):
        values = array.cast(pa.int64())
        if kind == "count":
            bad = ~_mask(pc.greater(values, 0)) & ~np.asarray(
                values.is_null().to_numpy(zero_copy_only=False), dtype=bool
            )
            return ParsedColumn(values, bad, "not a whole number above 0")
        return ParsedColumn(values, no_rows_bad, "not a whole number")
    if kind == "amount":
        numbers = array.cast(pa.float64())
        bad = ~_mask(pc.greater_equal(numbers, 0.0)) & ~np.asarray(
            numbers.is_null().to_numpy(zero_copy_only=False), dtype=bool
        )
        return ParsedColumn(array.cast(pa.string()), bad, "not an amount of 0 or more")
    if kind == "date":
        if pa.types.is_timestamp(array.type):
            array = array.cast(pa.timestamp("s"), safe=False)
        return ParsedColumn(array.cast(pa.date32()), no_rows_bad, "not a date")
    values = array.cast(pa.timestamp("s"), safe=False)
    return ParsedColumn(values, no_rows_bad, "not a date and time")


def rejections_of(
    file: InputFile, column: Column, parsed: ParsedColumn, original: pa.Array
) -> list[Rejection]:
    """The parsed column's bad rows, each with its line and value."""
    if not parsed.bad.any():
        return []
    positions = file.positions()
    shown = original.cast(pa.string()) if not pa.types.is_string(original.type) else original
    texts = shown.to_pylist()
    rejections = []
    for index in np.flatnonzero(parsed.bad):
        value = texts[index]
        if value is None or not str(value).strip():
            rejections.append(
                Rejection(file.name, int(positions[index]), column.name, "empty (required)")
            )
        else:
            rejections.append(
                Rejection(file.name, int(positions[index]), column.name, parsed.reason, value)
            )
    return rejections


def missing_columns(file: InputFile, columns: Sequence[Column]) -> list[Rejection]:
    """A rejection for each required column the file does not have."""
    present = set(file.rows.column_names)
    return [
        Rejection(file.name, None, column.name, f"the file has no {column.name} column")
        for column in columns
        if column.required and column.name not in present
    ]
