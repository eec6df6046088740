"""The registry's CSV format: every row validated, every fault reported with its line (pure).

Strict, because people write these files: an unknown column, a bad cell or a dangling
gateway is a reported fault, never a guess. See docs/registry.md for the format.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from devices.broker_access import is_reserved_name
from devices.catalogue import KIND_NAMES
from devices.contract import is_valid_device_id
from devices.kinds import gateway

REQUIRED_COLUMNS = ("device_id", "kind", "village")
OPTIONAL_COLUMNS = ("name", "township", "grid", "site", "latitude", "longitude",
                    "installed_on", "gateway_id", "tags")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
GATEWAY_KIND = gateway.KIND.name
MAX_TEXT_CHARS = 200


class CsvFileError(ValueError):
    """The file as a whole cannot be read (encoding, header); no row was looked at."""


class CellError(ValueError):
    """One cell's fault, in words an operator understands."""


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One device as a registry file (or `devices add`) describes it."""

    device_id: str
    kind: str
    village: str
    name: str | None = None
    township: str | None = None
    grid: str | None = None
    site: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    installed_on: date | None = None
    gateway_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A fault of one row: its line in the file, its device (if readable) and why."""

    line: int
    device_id: str | None
    reason: str

    def __str__(self) -> str:
        who = f" ({self.device_id})" if self.device_id else ""
        return f"line {self.line}{who}: {self.reason}"


@dataclass(frozen=True)
class ParsedFile:
    """The rows that passed, the faults of those that did not, and the columns the file has."""

    columns: tuple[str, ...]
    rows: list[DeviceRow]
    problems: list[RowProblem]


def _text(value: str) -> str:
    if len(value) > MAX_TEXT_CHARS:
        raise CellError(f"longer than {MAX_TEXT_CHARS} characters")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise CellError("contains a control character")
    return value


def _device_id(value: str) -> str:
    if not is_valid_device_id(value):
        raise CellError(f"{value!r} is not 3 to 64 characters of [A-Za-z0-9_.-]")
    if is_reserved_name(value):
        raise CellError(f"{value!r}: names starting with 'svc-' are reserved for services")
    return value


def _kind(value: str) -> str:
    if value not in KIND_NAMES:
        raise CellError(f"unknown kind {value!r} (known: {', '.join(KIND_NAMES)})")
    return value


def _coordinate(limit: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise CellError(f"{value!r} is not a number") from None
        if not math.isfinite(number) or not -limit <= number <= limit:
            raise CellError(f"{value} is outside -{limit:g} to {limit:g}")
        return number
    return parse


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CellError(f"{value!r} is not a date like 2026-11-22") from None


def _tag_text(value: str, what: str) -> str:
    if not value:
        raise CellError(f"a tag {what} is empty")
    return _text(value)


def parse_tags(value: str) -> dict[str, str]:
    """Tags from `key=value;key=value`, or from a JSON object of strings."""
    if value.startswith("{"):
        try:
            loaded: Any = json.loads(value)
        except json.JSONDecodeError as exc:
            raise CellError(f"tags look like JSON but are not: {exc.msg}") from None
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise CellError("JSON tags must be an object of strings")
        return {_tag_text(k, "key"): _text(v) for k, v in loaded.items()}
    tags: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in value.split(";"))):
        key, equals, tag_value = pair.partition("=")
        if not equals:
            raise CellError(f"tag {pair!r} is not key=value")
        key = _tag_text(key.strip(), "key")
        if key in tags:
            raise CellError(f"tag {key!r} is given twice")
        tags[key] = _text(tag_value.strip())
    return tags


def format_tags(tags: Mapping[str, str]) -> str:
    """Tags as a cell: `key=value;...` when that reads back the same, JSON otherwise."""
    if not tags:
        return ""
    plain = ";".join(f"{key}={value}" for key, value in sorted(tags.items()))
    # A cell starting with `{` is read as JSON, so a first key like `{x` needs JSON too.
    if plain.startswith("{") or any(ch in text for item in tags.items() for text in item
                                    for ch in ";=") or any(
            text != text.strip() for item in tags.items() for text in item):
        return json.dumps(dict(tags), ensure_ascii=False, sort_keys=True)
    return plain


CELL_PARSERS: dict[str, Callable[[str], Any]] = {
    "device_id": _device_id,
    "kind": _kind,
    "village": _text,
    "name": _text,
    "township": _text,
    "grid": _text,
    "site": _text,
    "latitude": _coordinate(90),
    "longitude": _coordinate(180),
    "installed_on": _date,
    "gateway_id": _device_id,
    "tags": parse_tags,
}


# Lines end in \n, \r\n or (old Mac spreadsheets) a lone \r: split after a lone \r too.
_CR_LINE_END = re.compile(rb"(?<=\r)(?!\n)")


def decoded_lines(file: IO[bytes]) -> Iterator[str]:
    """The file's lines as text, read as they come: UTF-8, a byte-order mark tolerated;
    CsvFileError names the first line that is not UTF-8."""
    pieces = (piece for line in file for piece in _CR_LINE_END.split(line) if piece)
    for number, line in enumerate(pieces, 1):
        try:
            yield line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise CsvFileError(f"line {number}: not UTF-8 (save the file as UTF-8)") from None


def _header(fields: list[str]) -> tuple[str, ...]:
    columns = tuple(name.strip().lower() for name in fields)
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise CsvFileError(f"line 1: unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise CsvFileError(f"line 1: column {duplicated[0]!r} appears twice")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise CsvFileError(f"line 1: required column {missing[0]!r} is missing")
    return columns


def _row(line: int, columns: tuple[str, ...], cells: list[str],
         ) -> tuple[DeviceRow | None, list[RowProblem]]:
    if len(cells) != len(columns):
        reason = f"has {len(cells)} fields, the header has {len(columns)}"
        return None, [RowProblem(line, None, reason)]
    raw_id = cells[columns.index("device_id")].strip()
    shown_id = raw_id if is_valid_device_id(raw_id) else None
    values: dict[str, Any] = {}
    problems = []
    for column, cell in zip(columns, cells, strict=True):
        cell = cell.strip()
        if not cell:
            if column in REQUIRED_COLUMNS:
                problems.append(RowProblem(line, shown_id, f"{column} is empty"))
            continue
        try:
            values[column] = CELL_PARSERS[column](cell)
        except CellError as exc:
            problems.append(RowProblem(line, shown_id, f"{column}: {exc}"))
    if problems:
        return None, problems
    return DeviceRow(**values), []


def _gateway_problem(row: DeviceRow, gateways: Set[str]) -> str | None:
    if row.gateway_id is None:
        return None
    if row.kind == GATEWAY_KIND:
        return "gateway_id: a gateway is not reached through another gateway"
    if row.gateway_id not in gateways:
        return f"gateway_id: {row.gateway_id!r} is not a gateway in this file or the registry"
    return None


def row_from_cells(cells: Mapping[str, str], registry_gateways: Set[str]) -> DeviceRow:
    """One device from named cells (as `devices add` takes them); ValueError lists every fault."""
    columns = tuple(cells)
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    missing = [name for name in REQUIRED_COLUMNS if not cells.get(name, "").strip()]
    if missing:
        raise ValueError(f"{missing[0]} is required")
    row, problems = _row(0, columns, [cells[name] for name in columns])
    reason = _gateway_problem(row, registry_gateways) if row else None
    if row is None or reason:
        raise ValueError("; ".join([p.reason for p in problems] + ([reason] if reason else [])))
    return row


def parse_registry_csv(data: bytes | IO[bytes], registry_gateways: Set[str] = frozenset(),
                       ) -> ParsedFile:
    """Validate every row of a registry file (its bytes, or a binary file read as it goes);
    `registry_gateways` are gateways already stored."""
    reader = csv.reader(decoded_lines(io.BytesIO(data) if isinstance(data, bytes) else data))
    try:
        columns = _header(next(reader))
    except StopIteration:
        raise CsvFileError("the file is empty: the first line must name the columns") from None
    except csv.Error as exc:
        raise CsvFileError(f"line 1: {exc}") from None
    parsed: list[tuple[int, DeviceRow]] = []
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(line, None, f"not valid CSV: {exc}"))
            break
        if not any(cell.strip() for cell in cells):
            continue  # blank lines are common at the end of spreadsheet exports
        row, row_problems = _row(line, columns, cells)
        problems.extend(row_problems)
        if row is None:
            continue
        if row.device_id in first_line:
            problems.append(RowProblem(
                line, row.device_id, f"device_id also on line {first_line[row.device_id]}"))
            continue
        first_line[row.device_id] = line
        parsed.append((line, row))
    reassigned = {row.device_id for _, row in parsed if row.kind != GATEWAY_KIND}
    gateways = ({row.device_id for _, row in parsed if row.kind == GATEWAY_KIND}
                | (set(registry_gateways) - reassigned))
    rows = []
    for line, row in parsed:
        reason = _gateway_problem(row, gateways)
        if reason:
            problems.append(RowProblem(line, row.device_id, reason))
        else:
            rows.append(row)
    problems.sort(key=lambda problem: problem.line)
    return ParsedFile(columns, rows, problems)


def format_cell(value: object) -> str:
    """A row's value as the CSV cell that parses back to it (None as an empty cell)."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return format_tags(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_registry_csv(rows: Iterable[DeviceRow]) -> str:
    """Rows as a registry file that `parse_registry_csv` reads back to the same rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([format_cell(getattr(row, column)) for column in COLUMNS])
    return out.getvalue()
