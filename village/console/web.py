"""What every console page shares: templates, language, the signed-in session, CSRF."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ground.principal import Role
from village.api.deps import Conn
from village.console import i18n
from village.console.sessions import Session, csrf_matches, find_session
from village.console.settings import ConsoleSettings

PREFIX = "/console"
SESSION_COOKIE = "village_session"
LANG_COOKIE = "village_lang"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"

_templates = Environment(
    loader=FileSystemLoader(str(resources.files("village.console") / "templates")),
    autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True,
)


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page."""


class NotAllowed(Exception):
    """The signed-in user's role or scope does not allow this page or action."""


def now() -> datetime:
    """The time a request is served at (the one clock read of the console)."""
    return datetime.now(UTC)


def console_settings(request: Request) -> ConsoleSettings:
    """The console section of the settings the app was built with."""
    settings: ConsoleSettings = request.app.state.settings.console
    return settings


def language(request: Request) -> str:
    """The page language: Chinese unless the switch chose English."""
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"


def current_session(request: Request, conn: Conn) -> Session:
    """The signed-in session, or SignInRequired."""
    cookie = request.cookies.get(SESSION_COOKIE)
    session = find_session(conn, cookie, now()) if cookie else None
    if session is None:
        raise SignInRequired()
    return session


SignedIn = Annotated[Session, Depends(current_session)]


async def checked_form(request: Request, session: SignedIn) -> Mapping[str, Any]:
    """The posted form, once its CSRF token (field or htmx header) is the session's."""
    form = await request.form()
    presented = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not csrf_matches(session.csrf_token, presented if isinstance(presented, str) else None):
        raise NotAllowed("the form is stale or forged (CSRF token); reload the page")
    return form


Form = Annotated[Mapping[str, Any], Depends(checked_form)]


def require(session: Session, role: Role) -> None:
    """NotAllowed unless the user has at least `role` (somewhere in their scope)."""
    if session.user.principal.role < role:
        raise NotAllowed(f"needs role {role.label}")


def local_time(request: Request, value: datetime | None, typed: bool = False) -> str:
    """A time as the county reads it (`typed`: in a form field's format)."""
    if value is None:
        return ""
    shown = value.astimezone(console_settings(request).zone)
    return shown.strftime("%Y-%m-%dT%H:%M" if typed else "%Y-%m-%d %H:%M:%S")


def typed_time(request: Request, text: str) -> datetime:
    """A time typed in a form (the county's clock) as an aware instant; ValueError if not one."""
    return datetime.fromisoformat(text).replace(tzinfo=console_settings(request).zone)


def render(request: Request, template: str, session: Session | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    """A page (or an htmx fragment) rendered in the user's language and the county's time."""
    lang = language(request)
    html = _templates.get_template(template).render(
        request=request, session=session, lang=lang, t=i18n.translator(lang),
        when=lambda value, typed=False: local_time(request, value, typed),
        prefix=PREFIX, settings=console_settings(request), Role=Role,
        principal=session.user.principal if session else None, **context)
    return HTMLResponse(html, status_code=status)


def redirect(path: str) -> RedirectResponse:
    """See-other to a console path (after a form post)."""
    return RedirectResponse(PREFIX + path, status_code=303)


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards (htmx follows HX-Redirect)."""
    back = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    target = f"{PREFIX}/sign-in?next={back}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
