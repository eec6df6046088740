"""The audit trail: who did what, when, to what; filterable. Admins see all of it, others
the changes within their scope and their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from psycopg import sql
from psycopg.rows import class_row

from ground.principal import Principal, Role
from village.api.deps import Conn
from village.console import web
from village.console.scoped import within

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
PAGE_SIZE = 100
Text = Annotated[str | None, Query(max_length=200)]


@dataclass(frozen=True)
class AuditRow:
    """One recorded change."""

    id: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    target: str
    township: str | None
    village: str | None
    detail: dict[str, Any]


def audit_rows(conn: psycopg.Connection, principal: Principal, actor: str | None,
               action: str | None, target: str | None, before: int | None,
               limit: int = PAGE_SIZE) -> list[AuditRow]:
    """The newest changes the principal may see, filtered, before the id `before`."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    if principal.role < Role.ADMIN:
        scope, scope_params = within(principal, "a")
        parts.append(sql.SQL("(({} AND a.township IS NOT NULL) OR a.actor = %s)").format(scope))
        params += [*scope_params, principal.name]
    for column, value, pattern in (("actor", actor, "{}%"), ("action", action, "{}%"),
                                   ("target", target, "%{}%")):
        if value:
            parts.append(sql.SQL("{} LIKE %s").format(sql.Identifier("a", column)))
            params.append(pattern.format(value.replace("%", r"\%").replace("_", r"\_")))
    if before is not None:
        parts.append(sql.SQL("a.id < %s"))
        params.append(before)
    condition = sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")
    with conn.cursor(row_factory=class_row(AuditRow)) as cur:
        cur.execute(sql.SQL(
            "SELECT a.id, a.at, a.actor, a.actor_role, a.action, a.target, a.township,"
            " a.village, a.detail FROM api_audit a WHERE {} ORDER BY a.id DESC LIMIT %s"
        ).format(condition), [*params, limit])
        return cur.fetchall()


@router.get("/audit")
def audit(request: Request, conn: Conn, session: web.SignedIn, actor: Text = None,
          action: Text = None, target: Text = None,
          before: Annotated[int | None, Query(ge=1)] = None) -> Response:
    """The audit page."""
    rows = audit_rows(conn, session.user.principal, actor, action, target, before)
    chosen = {"actor": actor or "", "action": action or "", "target": target or ""}
    return web.render(request, "audit.html", session, page="audit", rows=rows, chosen=chosen,
                      next_before=rows[-1].id if len(rows) == PAGE_SIZE else None,
                      next_query="&".join(f"{k}={v}" for k, v in chosen.items() if v))
