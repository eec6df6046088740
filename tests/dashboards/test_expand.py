"""Grafana's variable interpolation and PostgreSQL macros, against Grafana's documented
expansions (docs: PostgreSQL data source, query editor > macros; template variables)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.expand import (
    MacroError,
    TimeRange,
    Variable,
    expand,
    expand_macros,
    go_duration_text,
    go_float,
    interpolate_variables,
    rfc3339_nano,
)

# The range Grafana's documentation uses in its examples.
DOC_RANGE = TimeRange(
    datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC),
    datetime(2017, 4, 21, 5, 6, 17, tzinfo=UTC),
    timedelta(minutes=1),
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("$__time(dateColumn)", 'dateColumn AS "time"'),
        ("$__timeEpoch(dateColumn)", 'extract(epoch from dateColumn) as "time"'),
        ("$__timeFilter(dateColumn)",
         "dateColumn BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"),
        ("$__timeFrom()", "'2017-04-21T05:01:17Z'"),
        ("$__timeTo()", "'2017-04-21T05:06:17Z'"),
        ("$__timeGroup(dateColumn,'5m')", "floor(extract(epoch from dateColumn)/300)*300"),
        ("$__timeGroup(dateColumn, 5m)", "floor(extract(epoch from dateColumn)/300)*300"),
        ("$__timeGroupAlias(dateColumn,'5m')",
         'floor(extract(epoch from dateColumn)/300)*300 AS "time"'),
        # A comma right after $__timeGroup: Grafana's pre-5.3 alias form.
        ("SELECT $__timeGroup(ts,'1h'), v", 'SELECT floor(extract(epoch from ts)/3600)*3600 AS "time", v'),
        ("$__timeGroup(ts,'1d')", "floor(extract(epoch from ts)/86400)*86400"),
        ("$__timeGroup(ts,'2w')", "floor(extract(epoch from ts)/1.2096e+06)*1.2096e+06"),
        ("$__unixEpochFilter(dateColumn)", "dateColumn >= 1492750877 AND dateColumn <= 1492751177"),
        ("no macro here", "no macro here"),
    ],
)
def test_macros_expand_as_grafana_documents(sql: str, expected: str) -> None:
    assert expand_macros(sql, DOC_RANGE) == expected


def test_time_group_on_timescaledb_uses_time_bucket() -> None:
    assert expand_macros("$__timeGroupAlias(ts, '5m')", DOC_RANGE, timescaledb=True) == (
        "time_bucket('300.000s',ts) AS \"time\""
    )


@pytest.mark.parametrize(
    "sql", ["$__nope(x)", "$__timeFilter()", "$__timeGroup(ts)", "$__timeGroup(ts, 5 minutes)"]
)
def test_bad_macros_are_errors_like_grafana(sql: str) -> None:
    with pytest.raises(MacroError):
        expand_macros(sql, DOC_RANGE)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC), "2017-04-21T05:01:17Z"),
        (datetime(2017, 4, 21, 5, 1, 17, 120000, tzinfo=UTC), "2017-04-21T05:01:17.12Z"),
        (datetime(2017, 4, 21, 13, 1, 17, tzinfo=UTC).astimezone(), "2017-04-21T13:01:17Z"),
    ],
)
def test_rfc3339_nano(moment: datetime, text: str) -> None:
    assert rfc3339_nano(moment) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(300.0, "300"), (0.5, "0.5"), (604800.0, "604800"), (1e6, "1e+06"), (1.5e-5, "1.5e-05")],
)
def test_go_float_matches_go_v_format(value: float, text: str) -> None:
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("interval", "text"),
    [(timedelta(minutes=5), "5m"), (timedelta(hours=1), "1h"), (timedelta(days=1), "1d"),
     (timedelta(seconds=90), "90s"), (timedelta(milliseconds=500), "500ms")],
)
def test_interval_text(interval: timedelta, text: str) -> None:
    assert go_duration_text(interval) == text


TOWNS = ("东河镇", "西山乡")


@pytest.mark.parametrize(
    ("variable", "sql", "expected"),
    [
        # Single value, neither multi nor All: escaped but not quoted (SqlDatasource).
        (Variable("v", ("O'Brien",), multi=False, include_all=False), "x = '$v'", "x = 'O''Brien'"),
        # Multi or include-all: every value quoted, joined with commas.
        (Variable("v", ("东河镇",)), "x IN ($v)", "x IN ('东河镇')"),
        (Variable("v", ("a", "b'c")), "x IN ($v)", "x IN ('a','b''c')"),
        (Variable("v", ("a",), multi=False, include_all=True), "x IN ($v)", "x IN ('a')"),
        # All with a custom all value: inserted as written, even with a format.
        (Variable("v", all_selected=True, options=TOWNS, all_value="'*'"), "'*' IN ($v)",
         "'*' IN ('*')"),
        (Variable("v", all_selected=True, options=TOWNS, all_value="'*'"), "${v:sqlstring}", "'*'"),
        # All without one: every option.
        (Variable("v", all_selected=True, options=TOWNS), "x IN ($v)", "x IN ('东河镇','西山乡')"),
        # Explicit formats and the other syntaxes.
        (Variable("v", ("a'b", "c")), "${v:sqlstring}", "'a''b','c'"),
        (Variable("v", ("a", "c")), "${v:csv}", "a,c"),
        (Variable("v", ("a", "c")), "${v:raw}", "a,c"),
        (Variable("v", ("a", "c")), "${v:pipe}", "a|c"),
        (Variable("v", ("a'", "c")), "${v:singlequote}", "'a\\'','c'"),
        (Variable("v", ('a"', "c")), "${v:doublequote}", '"a\\"","c"'),
        (Variable("v", ("a", "c")), "[[v]]", "'a','c'"),
        (Variable("v", ("a",)), "${v}", "'a'"),
        # Unknown names and macros are left for the next step.
        (Variable("v", ("a",)), "$other $__timeFilter(ts)", "$other $__timeFilter(ts)"),
    ],
)
def test_variables_interpolate_like_the_sql_datasource(
    variable: Variable, sql: str, expected: str
) -> None:
    assert interpolate_variables(sql, {variable.name: variable}, DOC_RANGE) == expected


def test_builtin_interval_variables() -> None:
    time_range = TimeRange(DOC_RANGE.start, DOC_RANGE.end, timedelta(hours=1))
    assert interpolate_variables("$__interval $__interval_ms $__from $__to", {}, time_range) == (
        "1h 3600000 1492750877000 1492751177000"
    )


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(MacroError):
        interpolate_variables("${v:lucene}", {"v": Variable("v", ("a",))}, DOC_RANGE)


def test_full_expansion_runs_variables_before_macros() -> None:
    sql = "SELECT $__timeGroupAlias(ts, $__interval) FROM t WHERE $__timeFilter(ts) AND v IN ($v)"
    assert expand(sql, {"v": Variable("v", ("x",))}, TimeRange(DOC_RANGE.start, DOC_RANGE.end,
                                                               timedelta(minutes=5))) == (
        "SELECT floor(extract(epoch from ts)/300)*300 AS \"time\" FROM t WHERE ts BETWEEN "
        "'2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z' AND v IN ('x')"
    )
