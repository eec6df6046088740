"""Expand a panel's SQL the way Grafana does before PostgreSQL sees it. Pure.

Two steps, in Grafana's order: the browser interpolates template variables (and built-ins
such as `$__interval`) through the SQL datasource's `interpolateVariable`; then the server's
PostgreSQL macro engine replaces `$__timeFilter(col)` and friends. Used by the tests and by
`village dashboards check` to run every panel against a real database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown, or missing its arguments)."""


@dataclass(frozen=True)
class Variable:
    """A template variable's definition and its current selection."""

    name: str
    selected: tuple[str, ...] = ()
    all_selected: bool = False
    options: tuple[str, ...] = ()
    multi: bool = True
    include_all: bool = True
    all_value: str | None = None


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range and the interval Grafana picked for it."""

    start: datetime
    end: datetime
    interval: timedelta = field(default=timedelta(minutes=1))


# Grafana's variable syntax: $name, [[name:format]], ${name.field:format}.
VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
# The server's macro syntax: $name(args), args up to the first ')'.
MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")


def quote_literal(value: str) -> str:
    """A PostgreSQL string literal, as Grafana's SQL query model quotes it."""
    return "'" + value.replace("'", "''") + "'"


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


FORMATS: dict[str, Callable[[str | list[str]], str]] = {
    "sqlstring": lambda v: ",".join(quote_literal(x) for x in _as_list(v)),
    "raw": lambda v: ",".join(_as_list(v)),
    "csv": lambda v: ",".join(_as_list(v)),
    "pipe": lambda v: "|".join(_as_list(v)),
    "singlequote": lambda v: ",".join("'" + x.replace("'", "\\'") + "'" for x in _as_list(v)),
    "doublequote": lambda v: ",".join('"' + x.replace('"', '\\"') + '"' for x in _as_list(v)),
}


def sql_interpolate(value: str | list[str], variable: Variable) -> str:
    """The SQL datasource's `interpolateVariable`: quote multi/All values, escape the rest."""
    if isinstance(value, str):
        if variable.multi or variable.include_all:
            return quote_literal(value)
        return value.replace("'", "''")
    return ",".join(quote_literal(v) for v in value)


def go_duration_text(interval: timedelta) -> str:
    """How Grafana writes `$__interval`: the largest whole unit (1d, 5m, 30s, 500ms)."""
    ms = round(interval.total_seconds() * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0 and ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def interpolate_variables(
    sql: str, variables: Mapping[str, Variable], time_range: TimeRange
) -> str:
    """Replace template variables and built-ins the way Grafana's template service does."""
    builtins = {
        "__interval": go_duration_text(time_range.interval),
        "__interval_ms": str(round(time_range.interval.total_seconds() * 1000)),
        "__from": str(round(time_range.start.timestamp() * 1000)),
        "__to": str(round(time_range.end.timestamp() * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        variable = variables.get(name)
        if variable is None:
            return match.group(0)  # Grafana leaves unknown names (and macros) alone
        value: str | list[str]
        if variable.all_selected:
            # A custom all value is inserted as written, unformatted (Grafana formats it
            # only for the text and percentencode formats, which SQL panels do not use).
            if variable.all_value is not None:
                return variable.all_value
            value = list(variable.options)
        elif variable.multi:
            value = list(variable.selected)
        else:
            value = variable.selected[0]
        if fmt is None:
            return sql_interpolate(value, variable)
        if fmt not in FORMATS:
            raise MacroError(f"unsupported variable format {fmt!r}")
        return FORMATS[fmt](value)

    return VARIABLE.sub(replace, sql)


def rfc3339_nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += ("." + f"{utc.microsecond:06d}").rstrip("0")
    return text + "Z"


def go_float(value: float) -> str:
    """Go's `%v` of a float64: shortest digits, exponent form from 1e6 up or below 1e-4."""
    digits = Decimal(repr(float(value))).normalize()
    sign, numerals, exponent = digits.as_tuple()
    assert isinstance(exponent, int)
    point = len(numerals) + exponent  # decimal point position, as Go's `dp`
    if point - 1 < -4 or point - 1 >= 6:  # strconv's 'g' with shortest precision
        mantissa = "".join(map(str, numerals))
        head = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
        power = point - 1
        return f"{'-' if sign else ''}{head}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    return format(digits, "f")


INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(text: str) -> timedelta:
    """Grafana's gtime.ParseInterval for the units dashboards use."""
    match = INTERVAL.match(text.strip("'"))
    if match is None:
        raise MacroError(f"error parsing interval {text}")
    return timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])


def _column(name: str, args: Sequence[str]) -> str:
    if not args or not args[0]:
        raise MacroError(f"missing time column argument for macro {name}")
    return args[0]


def expand_macros(sql: str, time_range: TimeRange, timescaledb: bool = False) -> str:
    """Replace the PostgreSQL datasource's macros as Grafana's server does."""
    start, end = time_range.start.astimezone(UTC), time_range.end.astimezone(UTC)
    between = f"BETWEEN '{rfc3339_nano(start)}' AND '{rfc3339_nano(end)}'"

    def time_group(args: Sequence[str]) -> str:
        if len(args) < 2:
            raise MacroError("macro __timeGroup needs time column and interval")
        seconds = parse_interval(args[1]).total_seconds()
        if timescaledb:
            return f"time_bucket('{seconds:.3f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{go_float(seconds)})*{go_float(seconds)}"

    def epoch_filter(args: Sequence[str]) -> str:
        column = _column("__unixEpochFilter", args)
        return f"{column} >= {int(start.timestamp())} AND {column} <= {int(end.timestamp())}"

    macros: dict[str, Callable[[Sequence[str]], str]] = {
        "__time": lambda a: f'{_column("__time", a)} AS "time"',
        "__timeEpoch": lambda a: f'extract(epoch from {_column("__timeEpoch", a)}) as "time"',
        "__timeFilter": lambda a: f"{_column('__timeFilter', a)} {between}",
        "__timeFrom": lambda a: f"'{rfc3339_nano(start)}'",
        "__timeTo": lambda a: f"'{rfc3339_nano(end)}'",
        "__timeGroup": time_group,
        "__timeGroupAlias": lambda a: time_group(a) + ' AS "time"',
        "__unixEpochFilter": epoch_filter,
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        # Grafana (pre-5.3 compatibility): when the first occurrence of this very macro text
        # is followed directly by a comma, `$__timeGroup` means the alias form.
        if name == "__timeGroup":
            after = sql.find(match.group(0)) + len(match.group(0))
            if sql[after : after + 1] == ",":
                name = "__timeGroupAlias"
        args = [arg.strip(" ") for arg in match.group(2).split(",")]
        if name not in macros:
            raise MacroError(f"unknown macro {name!r}")
        return macros[name](args)

    return MACRO.sub(replace, sql)


def expand(
    sql: str,
    variables: Mapping[str, Variable],
    time_range: TimeRange,
    timescaledb: bool = False,
) -> str:
    """A panel's SQL as PostgreSQL receives it from Grafana."""
    return expand_macros(interpolate_variables(sql, variables, time_range), time_range, timescaledb)
