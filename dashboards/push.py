"""Push the folder, the datasource and the dashboards to Grafana over its HTTP API.

The only I/O of the dashboards package. Idempotent: everything is addressed by UID, so a
second push updates what the first created and never duplicates it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaUnauthorizedError,
)

from dashboards.board import BuiltDashboard

T = TypeVar("T")


class PushError(Exception):
    """Grafana could not be reached or refused; the message says which, without secrets."""


@dataclass
class PushReport:
    """What a push did to each object: "created", "updated" or "unchanged"."""

    grafana_version: str
    folder: str = ""
    datasource: str = ""
    dashboards: dict[str, str] = field(default_factory=dict)


def shown_url(url: str) -> str:
    """The URL without any user:password part, fit for a message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def connect(url: str, credential: str | tuple[str, str], timeout_s: float) -> GrafanaApi:
    """A Grafana API client (no request is made yet)."""
    return GrafanaApi.from_url(url, credential=credential, timeout=timeout_s)


def _call(url: str, what: str, request: Callable[[], T]) -> T:
    """Run one API request, turning every failure into a one-line PushError."""
    where = shown_url(url)
    try:
        return request()
    except GrafanaUnauthorizedError:
        raise PushError(
            f"Grafana at {where} refused the credentials (401) while {what}: "
            "check VILLAGE_GRAFANA__TOKEN or VILLAGE_GRAFANA__USER/PASSWORD"
        ) from None
    except GrafanaClientError as exc:
        if exc.status_code == 403:
            raise PushError(
                f"Grafana at {where} forbids {what} (403): the token needs the Admin role"
            ) from None
        raise PushError(f"Grafana at {where} refused {what} ({exc.status_code}): {exc.message}") from None
    except GrafanaServerError as exc:
        raise PushError(f"Grafana at {where} failed {what} ({exc.status_code}): {exc.message}") from None
    except (GrafanaException, OSError) as exc:
        raise PushError(f"cannot reach Grafana at {where} while {what}: {type(exc).__name__}") from None
    except ValueError:  # a reply that is not JSON: something else answers at this URL
        raise PushError(f"no Grafana API at {where} ({what} got a reply that is not JSON)") from None


def _find(url: str, what: str, request: Callable[[], T]) -> T | None:
    """A GET that may find nothing: None on 404, the object otherwise."""

    def attempt() -> T | None:
        try:
            return request()
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                return None
            raise

    return _call(url, what, attempt)


def push(
    api: GrafanaApi,
    url: str,
    folder_uid: str,
    folder_title: str,
    datasource: dict[str, Any],
    dashboards: list[BuiltDashboard],
) -> PushReport:
    """Create or update the folder, the datasource and every dashboard, by UID."""
    build_info = _call(url, "logging in", api.health.check)
    if not isinstance(build_info, dict) or "version" not in build_info:
        raise PushError(f"no Grafana API at {shown_url(url)} (its settings name no version)")
    report = PushReport(grafana_version=str(build_info["version"]))

    folder = _find(url, "reading the folder", lambda: api.folder.get_folder(folder_uid))
    if folder is None:
        _call(url, "creating the folder", lambda: api.folder.create_folder(folder_title, uid=folder_uid))
        report.folder = "created"
    elif folder.get("title") != folder_title:
        _call(url, "renaming the folder",
              lambda: api.folder.update_folder(folder_uid, title=folder_title, overwrite=True))
        report.folder = "updated"
    else:
        report.folder = "unchanged"

    uid = datasource["uid"]
    existing = _find(url, "reading the datasource", lambda: api.datasource.get_datasource_by_uid(uid))
    if existing is None:
        _call(url, "creating the datasource", lambda: api.datasource.create_datasource(datasource))
        report.datasource = "created"
    else:
        _call(url, "updating the datasource",
              lambda: api.datasource.update_datasource_by_uid(uid, datasource))
        report.datasource = "updated"

    for built in dashboards:
        body = {
            "dashboard": {**built.model, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "village dashboards push",
        }
        saved = _call(
            url, f"saving dashboard {built.uid}",
            lambda body=body: api.dashboard.update_dashboard(body),  # type: ignore[misc]
        )
        report.dashboards[built.uid] = "created" if saved.get("version") == 1 else "updated"
    return report
