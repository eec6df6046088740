"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

import ipaddress
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Form as FormField
from fastapi.responses import RedirectResponse, Response

from village.api.deps import Conn
from village.console import web
from village.console.accounts import sign_in
from village.console.sessions import csrf_matches, end_session, start_session

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
# Sign-in happens before there is a session, so its CSRF token is a double-submit cookie.
SIGN_IN_COOKIE = "village_sign_in"


def _safe_next(target: str | None) -> str:
    # Only back into the console: never an open redirect to another site.
    if target and target.startswith(web.PREFIX + "/") and "//" not in target:
        return target
    return web.PREFIX + "/"


def cookies_refused_here(scheme: str, host: str | None, secure_cookie: bool) -> bool:
    """Whether a browser will drop this console's cookies: Secure ones over plain http are kept
    only for loopback addresses, so signing in from another machine needs https (or the
    setting turned off on a trusted network)."""
    if not secure_cookie or scheme != "http":
        return False
    if host is None or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _sign_in_page(request: Request, next_: str | None, error: str | None = None,
                  status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    refused = cookies_refused_here(request.url.scheme, request.url.hostname,
                                   web.console_settings(request).secure_cookie)
    response = web.render(request, "sign_in.html", None, status, next=_safe_next(next_),
                          form_token=token, error=error, https_needed=refused)
    _set_cookie(request, response, SIGN_IN_COOKIE, token, 600)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=web.PREFIX, httponly=True,
                        samesite="lax", secure=web.console_settings(request).secure_cookie)


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:  # noqa: A002
    """The sign-in form."""
    return _sign_in_page(request, next)


@router.post("/sign-in")
def sign_in_submit(request: Request, conn: Conn, name: Annotated[str, FormField(max_length=64)],
                   password: Annotated[str, FormField(max_length=1024)],
                   form_token: Annotated[str, FormField()] = "",
                   next: Annotated[str, FormField()] = "") -> Response:  # noqa: A002
    """Check the password; on success start a session and go where the user was going."""
    if not csrf_matches(request.cookies.get(SIGN_IN_COOKIE, ""), form_token or None):
        # Without its cookie the form cannot be told from a forgery; over plain http from
        # another machine that is the browser refusing Secure cookies, which the page explains.
        return _sign_in_page(request, next, "not_allowed", 403)
    settings = web.console_settings(request)
    now = web.now()
    result = sign_in(conn, name.strip(), password, now, settings.max_failures,
                     timedelta(minutes=settings.lock_minutes))
    if result.user is None:
        if result.refusal == "locked" and result.locked_until is not None:
            message = f"locked:{result.locked_until:%H:%M} UTC"
            return _sign_in_page(request, next, message, 429)
        return _sign_in_page(request, next, "wrong_password", 401)
    lifetime = timedelta(hours=settings.session_hours)
    cookie, _ = start_session(conn, result.user, now, lifetime)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(request, response, web.SESSION_COOKIE, cookie, int(lifetime.total_seconds()))
    response.delete_cookie(SIGN_IN_COOKIE, path=web.PREFIX)
    return response


@router.post("/sign-out")
def sign_out(request: Request, conn: Conn, session: web.SignedIn, form: web.Form) -> Response:
    """End the session and go back to the sign-in page."""
    end_session(conn, request.cookies.get(web.SESSION_COOKIE, ""), web.now())
    response = web.redirect("/sign-in")
    response.delete_cookie(web.SESSION_COOKIE, path=web.PREFIX)
    return response


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, back: str | None = None) -> Response:
    """Choose the page language (zh or en) and return to the page."""
    response = RedirectResponse(_safe_next(back), status_code=303)
    response.set_cookie(web.LANG_COOKIE, "en" if lang == "en" else "zh", max_age=365 * 86400,
                        path=web.PREFIX, samesite="lax")
    return response
