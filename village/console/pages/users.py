"""Users (admins only): create, disable, enable, reset a password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ground.principal import Place, Role
from village.api.deps import Conn
from village.console import web
from village.console.accounts import (
    AccountError,
    create_user,
    disable_user,
    enable_user,
    list_users,
    reset_password,
)

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)


def _page(request: Request, conn: Conn, session: web.Session, error: str | None = None,
          status: int = 200) -> Response:
    return web.render(request, "users.html", session, status, users=list_users(conn),
                      roles=[r.label for r in Role], error=error)


@router.get("/users")
def users(request: Request, conn: Conn, session: web.SignedIn) -> Response:
    """Every user with their role, scope and state."""
    web.require(session, Role.ADMIN)
    return _page(request, conn, session)


@router.post("/users")
def create(request: Request, conn: Conn, session: web.SignedIn, form: web.Form) -> Response:
    """Create a user from the form."""
    web.require(session, Role.ADMIN)
    try:
        role = Role.from_label(str(form.get("role", "")))
    except KeyError:
        return _page(request, conn, session, "unknown role", 422)
    scope = Place(str(form.get("township") or "").strip() or None,
                  str(form.get("village") or "").strip() or None)
    try:
        create_user(conn, session.user.principal, str(form.get("name", "")).strip(),
                    str(form.get("password", "")), role, scope,
                    str(form.get("display_name", "")).strip())
    except AccountError as exc:
        return _page(request, conn, session, str(exc), 422)
    return web.redirect("/users")


_CHANGES = {"disable": disable_user, "enable": enable_user}


@router.post("/users/{name}/{change}")
def change(request: Request, name: str, change: str, conn: Conn, session: web.SignedIn,
           form: web.Form) -> Response:
    """Disable, enable, or reset the password of a user."""
    web.require(session, Role.ADMIN)
    try:
        if change == "reset":
            reset_password(conn, session.user.principal, name, str(form.get("password", "")))
        elif change in _CHANGES:
            _CHANGES[change](conn, session.user.principal, name)
        else:
            return _page(request, conn, session, f"unknown change {change!r}", 404)
    except AccountError as exc:
        return _page(request, conn, session, str(exc), 422)
    return web.redirect("/users")
