"""A small real HTTP server answering the few Grafana API endpoints `dashboards push` uses,
the way Grafana 11 answers them (status codes, JSON shapes, auth). Not a mock of the client:
grafana-client talks HTTP to it exactly as it would to Grafana."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class GrafanaState:
    """What the fake Grafana holds, and every request it saw."""

    token: str = "glsa_test_token"
    basic: tuple[str, str] = ("admin", "s3cret-admin")
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


def _handler(state: GrafanaState) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization", "")
            if header == f"Bearer {state.token}":
                return True
            if header.startswith("Basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return (user, password) == state.basic
            return False

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length", "0"))
            return json.loads(self.rfile.read(length) or b"{}")

        def _route(self, method: str) -> None:
            state.requests.append((method, self.path))
            if not self._authorized():
                self._reply(401, {"message": "Invalid API key", "traceID": ""})
                return
            with lock:
                for pattern, action in ROUTES[method]:
                    match = re.fullmatch(pattern, self.path)
                    if match:
                        status, body = action(state, self._body() if method != "GET" else None,
                                              *match.groups())
                        self._reply(status, body)
                        return
            self._reply(404, {"message": "Not found"})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._route("PUT")

    return Handler


def _settings(state: GrafanaState, _: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"buildInfo": {"version": "11.6.0", "commit": "test", "edition": "Open Source"}}


def _folder_get(state: GrafanaState, _: Any, uid: str) -> tuple[int, dict[str, Any]]:
    if uid not in state.folders:
        return 404, {"message": "folder not found", "status": "not-found"}
    return 200, state.folders[uid]


def _folder_create(state: GrafanaState, body: Any) -> tuple[int, dict[str, Any]]:
    uid = body["uid"]
    if uid in state.folders:
        return 409, {"message": "a folder with the same uid already exists"}
    state.folders[uid] = {"id": state.new_id(), "uid": uid, "title": body["title"],
                          "url": f"/dashboards/f/{uid}/", "version": 1}
    return 200, state.folders[uid]


def _folder_update(state: GrafanaState, body: Any, uid: str) -> tuple[int, dict[str, Any]]:
    if uid not in state.folders:
        return 404, {"message": "folder not found"}
    folder = state.folders[uid]
    folder.update(title=body.get("title", folder["title"]), version=folder["version"] + 1)
    return 200, folder


def _datasource_get(state: GrafanaState, _: Any, uid: str) -> tuple[int, dict[str, Any]]:
    if uid not in state.datasources:
        return 404, {"message": "Data source not found"}
    return 200, {k: v for k, v in state.datasources[uid].items() if k != "secureJsonData"}


def _datasource_create(state: GrafanaState, body: Any) -> tuple[int, dict[str, Any]]:
    if any(d["name"] == body["name"] for d in state.datasources.values()):
        return 409, {"message": "data source with the same name already exists"}
    source = {**body, "id": state.new_id(), "version": 1}
    state.datasources[body["uid"]] = source
    return 200, {"datasource": source, "id": source["id"], "message": "Datasource added",
                 "name": body["name"]}


def _datasource_update(state: GrafanaState, body: Any, uid: str) -> tuple[int, dict[str, Any]]:
    if uid not in state.datasources:
        return 404, {"message": "Data source not found"}
    old = state.datasources[uid]
    state.datasources[uid] = {**body, "id": old["id"], "version": old["version"] + 1}
    return 200, {"datasource": state.datasources[uid], "id": old["id"],
                 "message": "Datasource updated", "name": body["name"]}


def _dashboard_save(state: GrafanaState, body: Any) -> tuple[int, dict[str, Any]]:
    dashboard, folder_uid = body["dashboard"], body.get("folderUid")
    if folder_uid and folder_uid not in state.folders:
        return 400, {"message": "folder not found", "status": "folder-not-found"}
    uid = dashboard["uid"]
    old = state.dashboards.get(uid)
    if old is not None and not body.get("overwrite"):
        return 412, {"message": "The dashboard has been changed by someone else",
                     "status": "version-mismatch"}
    version = old["version"] + 1 if old else 1
    state.dashboards[uid] = {"dashboard": {**dashboard, "version": version},
                             "folderUid": folder_uid, "version": version,
                             "id": old["id"] if old else state.new_id()}
    return 200, {"id": state.dashboards[uid]["id"], "uid": uid, "status": "success",
                 "url": f"/d/{uid}/x", "version": version, "slug": "x"}


ROUTES: dict[str, list[tuple[str, Any]]] = {
    "GET": [
        (r"/api/frontend/settings", _settings),
        (r"/api/folders/([^/]+)", _folder_get),
        (r"/api/datasources/uid/([^/]+)", _datasource_get),
    ],
    "POST": [
        (r"/api/folders", _folder_create),
        (r"/api/datasources", _datasource_create),
        (r"/api/dashboards/db", _dashboard_save),
    ],
    "PUT": [
        (r"/api/folders/([^/]+)", _folder_update),
        (r"/api/datasources/uid/([^/]+)", _datasource_update),
    ],
}


@contextmanager
def fake_grafana() -> Iterator[tuple[str, GrafanaState]]:
    """A Grafana API on a free local port: yields its URL and its state."""
    state = GrafanaState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))  # bound at once: no race for the port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
