"""Least privilege in the database: one group role per service, granted what its job needs.

`village migrate` (run as the migration role, which owns the schema) creates the roles if
they are missing and re-applies every grant on each run, so tables added by later
migrations are covered. Login roles are made members of these (`village db roles`, or the
database's set-up in docs/deploy.md). Roles belong to the server, grants to the database.

- `village_reader`: SELECT on the whole schema but the secrets (API token hashes, broker
  secret hashes); Grafana logs in with it. Every service role is a member.
- `village_ingest`: writes readings, events, presence, pending devices, dead letters and
  devices' online/offline transitions, and runs the plain path's maintenance functions; deletes nothing.
- `village_alerting`: its alert tables, the broadcasts and device commands an alert
  starts, and devices going offline by silence; a member of `pg_read_all_stats`.
- `village_broadcast`: its broadcast and device command tables, and dead letters for
  answers it refuses.
- `village_api`: the registry (and its queue of broker grants), tokens and audit, the
  console's users, sessions and audio, acknowledgements and silences, broadcasts and device
  commands.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

READER = "village_reader"
# Readable by no service but the API (tokens, console sign-in, the registry's broker grants)
# and the migration role. The access queue holds new device secrets in plain until the broker
# has them.
SECRET_TABLES = ("api_tokens", "service_accounts", "broker_access_queue", "console_users",
                 "console_sessions")
SECRET_COLUMNS = {"devices": ("secret_hash",)}
ALL_DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
WRITE_NO_DELETE = ("SELECT", "INSERT", "UPDATE")
# A purge is the migration role's (an operator's) act, never a service's.
OWNER_ONLY_FUNCTIONS = ("village_forget_device_rollups",)
BROADCAST_TABLES = ("broadcasts", "broadcast_deliveries", "broadcast_audit", "broadcast_schedules",
                    "broadcast_groups")
COMMAND_TABLES = ("device_commands", "device_command_deliveries")
# Ingest and the alerting time pass both record devices' online/offline transitions.
STATUS_HISTORY = {"device_status_changes": ("SELECT", "INSERT"),
                  "device_status_recorded": WRITE_NO_DELETE}


@dataclass(frozen=True)
class ServiceRole:
    """A service's group role: table privileges beyond reading, and functions it may run."""

    name: str
    tables: dict[str, tuple[str, ...]]
    functions: tuple[str, ...] = ()
    server_roles: tuple[str, ...] = ()  # PostgreSQL's predefined roles it is a member of


SERVICE_ROLES = (
    ServiceRole("village_ingest", {
        "readings": WRITE_NO_DELETE, "events": WRITE_NO_DELETE, "latest_values": WRITE_NO_DELETE,
        "device_presence": WRITE_NO_DELETE, "pending_devices": WRITE_NO_DELETE,
        "dead_letters": ("INSERT",), **STATUS_HISTORY,
    }, functions=("village_ensure_partitions", "village_apply_retention",
                  "village_refresh_rollups", "village_prune_records")),
    # Its streaming pass reads only below the oldest open writer's start (pg_stat_activity),
    # and PostgreSQL shows another login's xact_start only to pg_read_all_stats: without it
    # ingest's open transactions were invisible, and a late commit could be passed over.
    ServiceRole("village_alerting", {
        **{table: ALL_DML for table in ("alert_states", "alerts", "alert_transitions", "alert_acks",
                                        "silences", "notifications", "alerting_watermarks")},
        **{table: WRITE_NO_DELETE for table in ("broadcasts", "broadcast_deliveries",
                                                "broadcast_audit", *COMMAND_TABLES)},
        **STATUS_HISTORY,
    }, server_roles=("pg_read_all_stats",)),
    ServiceRole("village_broadcast", {
        **{table: ALL_DML for table in (*BROADCAST_TABLES, *COMMAND_TABLES)},
        "dead_letters": ("INSERT",),
    }),
    ServiceRole("village_api", {
        **{table: ALL_DML for table in ("devices", "device_changes", "pending_devices",
                                        "api_tokens", "api_audit", "alert_acks", "silences",
                                        "console_users", "console_sessions", "console_audio",
                                        *BROADCAST_TABLES, *COMMAND_TABLES)},
        "broker_access_queue": ("SELECT", "INSERT"),
        **{table: WRITE_NO_DELETE for table in ("alerts", "alert_transitions")},
    }),
    # The access daemon: applies the queue (it holds the broker's admin login anyway, so the
    # plain secrets and the hashes it reads are no wider reach).
    ServiceRole("village_access", {"broker_access_queue": ("SELECT", "DELETE")}),
)
# Who may read the hidden columns, beyond the migration role.
SECRET_COLUMN_READERS = {("devices", "secret_hash"): ("village_access",)}
ROLE_NAMES = (READER, *(role.name for role in SERVICE_ROLES))


def apply_grants(conn: psycopg.Connection) -> None:
    """Create the service roles where missing and set their privileges on this database."""
    for name in ROLE_NAMES:
        _create_role(conn, name)
    roles = sql.SQL(", ").join(sql.Identifier(name) for name in ROLE_NAMES)
    database = sql.Identifier(_current_database(conn))
    conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(roles))
    conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(database, roles))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(roles))
    _grant_reader(conn)
    for role in SERVICE_ROLES:
        member = sql.Identifier(role.name)
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(READER), member))
        for table, privileges in role.tables.items():
            if _exists(conn, table):
                conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in privileges), sql.Identifier(table), member))
        for server_role in role.server_roles:
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(server_role), member))
        if any(p in ("INSERT", "UPDATE") for privileges in role.tables.values() for p in privileges):
            conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(member))
    api = sql.Identifier("village_api")
    for table in SECRET_TABLES:
        if _exists(conn, table):
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), api))
    for (table, column), readers in SECRET_COLUMN_READERS.items():
        for reader_role in readers:
            conn.execute(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                sql.Identifier(column), sql.Identifier(table), sql.Identifier(reader_role)))
    _grant_functions(conn)


def _grant_reader(conn: psycopg.Connection) -> None:
    reader = sql.Identifier(READER)
    relations = [name for (name,) in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')"
        " AND NOT c.relispartition ORDER BY 1")]
    for relation in relations:
        if relation in SECRET_TABLES:
            continue
        hidden = SECRET_COLUMNS.get(relation)
        if hidden is None:
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(relation), reader))
            continue
        columns = [name for (name,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum", (relation,)) if name not in hidden]
        conn.execute(sql.SQL("REVOKE SELECT ON {} FROM {}").format(sql.Identifier(relation), reader))
        conn.execute(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(relation), reader))


def _grant_functions(conn: psycopg.Connection) -> None:
    # SECURITY DEFINER functions run as the schema's owner: nobody but the named roles.
    granted = {function: [role.name for role in SERVICE_ROLES if function in role.functions]
               for role in SERVICE_ROLES for function in role.functions}
    for function in (*granted, *OWNER_ONLY_FUNCTIONS):
        for (signature,) in conn.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = 'public' AND p.proname = %s", (function,)).fetchall():
            conn.execute(sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(
                sql.SQL(signature)))
            for role_name in granted.get(function, []):
                conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
                    sql.SQL(signature), sql.Identifier(role_name)))


def _create_role(conn: psycopg.Connection, name: str) -> None:
    # Another database of the same server may be creating it at this very moment.
    conn.execute(sql.SQL(
        "DO $$ BEGIN"
        " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN"
        " CREATE ROLE {role} NOLOGIN; END IF;"
        " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    ).format(name=sql.Literal(name), role=sql.Identifier(name)))


def _exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _current_database(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_database()").fetchone()
    return str(row[0]) if row else ""


def login_name(group: str) -> str:
    """The login role a service connects as: a member of its group role."""
    return f"{group}_login"


def ensure_login(conn: psycopg.Connection, group: str, password: str) -> str:
    """Create or update the login role of `group` with this password; return its name."""
    login = login_name(group)
    _create_role(conn, login)
    conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
        sql.Identifier(login), sql.Literal(password)))
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login)))
    if group == READER:
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
            sql.Identifier(login)))
    return login
