"""The TimescaleDB-only migration SQL stays exercised where the test server has no
TimescaleDB: every statement of every `.timescale.sql` part parses (PostgreSQL's own parser,
through pglast), and its plain-SQL parts run or are planned on plain PostgreSQL, in a scratch
schema rolled back afterwards:

- tables, indexes, functions and procedures are created as written;
- the continuous aggregates' queries are created as ordinary materialized views (WITH NO
  DATA), with `time_bucket`, `first` and `last` standing in as same-signature SQL shims;
- the calls of TimescaleDB's API name known functions, and each argument is evaluated (the
  relations and columns they name must exist);
- `timescaledb.*` storage options name known options and existing columns.

On a TimescaleDB server the same SQL runs for real in every migrated test database
(docs/deploy.md, "Testing against TimescaleDB").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pglast import ast, parse_sql
from pglast.stream import RawStream

from ground.migrate import load_migrations

API = {"create_hypertable", "add_compression_policy", "add_continuous_aggregate_policy",
       "add_retention_policy"}
# The first argument of each API call names a hypertable or continuous aggregate.
STORAGE_OPTIONS = {"compress", "compress_segmentby", "compress_orderby"}
VIEW_OPTIONS = {"continuous", "materialized_only"}
SHIMS = """
CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$ SELECT date_bin(bucket_width, ts, '2000-01-03') $$;
CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz, timezone text)
RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT date_bin(bucket_width, ts AT TIME ZONE timezone, '2000-01-03') AT TIME ZONE timezone $$;
CREATE FUNCTION keep_first(state double precision, value double precision, ts timestamptz)
RETURNS double precision LANGUAGE sql AS $$ SELECT coalesce(state, value) $$;
CREATE FUNCTION keep_last(state double precision, value double precision, ts timestamptz)
RETURNS double precision LANGUAGE sql AS $$ SELECT value $$;
CREATE AGGREGATE first(double precision, timestamptz) (SFUNC = keep_first, STYPE = double precision);
CREATE AGGREGATE last(double precision, timestamptz) (SFUNC = keep_last, STYPE = double precision);
"""


def timescale_statements() -> Iterator[tuple[str, Any]]:
    """Every statement of the TimescaleDB parts, with the migration it belongs to."""
    for migration in load_migrations():
        if migration.timescale:
            for statement in parse_sql(migration.timescale):
                yield f"{migration.version:04d}_{migration.name}", statement


def sql_of(node: Any) -> str:
    """The SQL text of a parse-tree node."""
    return str(RawStream()(node))


def _option_names(options: Any) -> list[tuple[str | None, str]]:
    return [(o.defnamespace, str(o.defname)) for o in options or ()]


def _check_api_call(conn: psycopg.Connection, call: Any) -> None:
    name = call.funcname[-1].sval
    assert name in API, f"{name}: not a TimescaleDB function this test knows"
    arguments = [arg.arg if isinstance(arg, ast.NamedArgExpr) else arg for arg in call.args]
    for argument in arguments:
        conn.execute(f"SELECT {sql_of(argument)}")  # noqa: S608 - our own migration text
    conn.execute(f"SELECT {sql_of(arguments[0])}::regclass")  # noqa: S608
    if name == "create_hypertable":
        relation, column = sql_of(arguments[0]), sql_of(arguments[1])
        found = conn.execute(f"SELECT 1 FROM pg_attribute WHERE attrelid = {relation}::regclass"  # noqa: S608
                             f" AND attname = {column}").fetchone()
        assert found, f"create_hypertable: no column {column} in {relation}"


def is_a(node: Any, *kinds: type) -> bool:
    """isinstance, without narrowing pglast's everywhere-optional node types for mypy."""
    return isinstance(node, kinds)


def _check_statement(conn: psycopg.Connection, node: Any) -> str:
    if is_a(node, ast.CreateStmt, ast.IndexStmt, ast.CreateFunctionStmt):
        conn.execute(sql_of(node))
        return "created"
    if is_a(node, ast.SelectStmt) and node.fromClause is None:
        calls = [target.val for target in node.targetList]
        assert all(isinstance(call, ast.FuncCall) for call in calls), sql_of(node)
        for call in calls:
            _check_api_call(conn, call)
        return "API call checked"
    if is_a(node, ast.AlterTableStmt):
        table = node.relation.relname
        for command in node.cmds:
            options = {name: o for (space, name), o in zip(
                _option_names(command.def_), command.def_ or (), strict=True)
                if space == "timescaledb"}
            assert options and set(options) <= STORAGE_OPTIONS, sql_of(node)
            for key in ("compress_segmentby", "compress_orderby"):
                if key in options:
                    columns = options[key].arg.sval
                    conn.execute(f"SELECT {columns} FROM {table} LIMIT 0")  # noqa: S608
        return "storage options checked"
    if is_a(node, ast.CreateTableAsStmt):
        into = node.into
        names = _option_names(into.options)
        assert names and {name for _, name in names} <= VIEW_OPTIONS, sql_of(node)
        conn.execute(f"CREATE MATERIALIZED VIEW {into.rel.relname} AS {sql_of(node.query)}"
                     " WITH NO DATA")
        conn.execute(f"EXPLAIN {sql_of(node.query)}")
        return "planned"
    raise AssertionError(f"a statement this test cannot check yet: {sql_of(node)[:80]}")


def test_every_timescale_statement_parses() -> None:
    statements = list(timescale_statements())
    assert len(statements) >= 12
    kinds = {type(s.stmt).__name__ for _, s in statements}
    assert {"CreateStmt", "CreateTableAsStmt", "SelectStmt", "AlterTableStmt"} <= kinds


def test_the_plain_sql_parts_of_every_timescale_statement_run_or_plan(
    empty_database_url: str,
) -> None:
    outcomes: dict[str, int] = {}
    with psycopg.connect(empty_database_url) as conn:
        conn.execute("CREATE SCHEMA scratch")
        conn.execute("SET search_path = scratch, public")
        conn.execute(SHIMS)
        for migration, statement in timescale_statements():
            try:
                outcome = _check_statement(conn, statement.stmt)
            except psycopg.Error as exc:
                pytest.fail(f"{migration}: {sql_of(statement.stmt)[:80]}...: {exc}")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        conn.rollback()
    assert outcomes["planned"] == 2 and outcomes["API call checked"] >= 5
    assert outcomes["created"] >= 6 and outcomes["storage options checked"] == 1


def test_the_checks_catch_a_wrong_column(empty_database_url: str) -> None:
    wrong = parse_sql("CREATE TABLE r (device_id text, ts timestamptz);"
                      " SELECT create_hypertable('r', 'time')")
    with psycopg.connect(empty_database_url) as conn:
        _check_statement(conn, wrong[0].stmt)
        with pytest.raises(AssertionError, match="no column 'time'"):
            _check_statement(conn, wrong[1].stmt)
        with pytest.raises(psycopg.errors.UndefinedTable):
            _check_statement(conn, parse_sql("SELECT add_retention_policy('nope',"
                                             " INTERVAL '1 day')")[0].stmt)
