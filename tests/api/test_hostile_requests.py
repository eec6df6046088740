"""Requests no client should send: each gets a problem that says what is wrong (never a 500
or a reset), big bodies are refused before they are read, and a scoped token learns nothing
about what exists outside its scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from ground.links import LinkError, LinkGrant, sign_link_token, verify_link_token
from ground.principal import Role
from tests.api.conftest import TokenMaker, device_id
from village.api.app import create_app
from village.api.settings import ApiSettings
from village.settings import Settings, link_secret

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
BODY_LIMIT = 16 * 1024
IMPORT_LIMIT = 256 * 1024


@pytest.fixture
def small_client(settings: Settings, seeded: str) -> Iterator[TestClient]:
    """The API with small body limits, so a test need not send megabytes."""
    api = ApiSettings(max_body_bytes=BODY_LIMIT, max_import_bytes=IMPORT_LIMIT)
    with TestClient(create_app(settings.model_copy(update={"api": api})),
                    raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("token", [
    "é.é", "%C3%A9.%C3%A9", "\u202e.x", "a.\ud7ff", ".", "..", "a.", ".a", "x" * 5000,
    "AAAA.\x7f", "e30.e30",
])
def test_a_malformed_link_token_is_refused_not_raised(token: str) -> None:
    with pytest.raises(LinkError):
        verify_link_token(b"k" * 32, token, NOW)


@pytest.mark.parametrize("path", ["/a/%C3%A9.%C3%A9", "/a/%C3%A9", "/a/%00.%00",
                                  "/a/" + "x" * 3000 + "." + "y" * 3000, "/a/%F0%9F%98%80.x"])
def test_a_malformed_phone_link_is_403_on_get_and_post(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 403
    assert client.post(path, data={"comment": "ok"}).status_code == 403
    assert client.post(path + "/close-valve").status_code == 403


def test_an_expired_phone_link_is_410(client: TestClient, settings: Settings) -> None:
    token = sign_link_token(link_secret(settings),
                            LinkGrant(1, "p-7", datetime.now(UTC) - timedelta(seconds=1)))
    assert client.get(f"/a/{token}").status_code == 410
    assert client.post(f"/a/{token}", data={"comment": "late"}).status_code == 410


def _csv(rows: int) -> bytes:
    return ("device_id,kind,village,township\n" + "".join(
        f"wm-big-{n:06d},water_meter,east-1,east\n" for n in range(rows))).encode()


@pytest.mark.parametrize(("method", "path", "headers"), [
    ("POST", "/devices", {"content-type": "application/json"}),
    ("PATCH", f"/devices/{device_id('water_meter', 'east-1')}", {"content-type": "application/json"}),
    ("POST", "/broadcasts", {"content-type": "application/json"}),
    ("POST", "/broadcast-schedules", {"content-type": "application/json"}),
    ("POST", "/rules/check", {"content-type": "application/yaml"}),
    ("POST", "/silences", {"content-type": "application/json"}),
    ("POST", "/devices/commands", {"content-type": "application/json"}),
    ("POST", "/devices/import", {"content-type": "text/csv"}),
])
def test_every_body_is_bounded_413_past_the_setting(
    small_client: TestClient, auth: TokenMaker, method: str, path: str, headers: dict[str, str]
) -> None:
    limit = IMPORT_LIMIT if path.endswith("/import") else BODY_LIMIT
    headers = headers | auth()
    declared = small_client.request(method, path, headers=headers, content=b" " * (limit + 1))
    assert declared.status_code == 413, declared.text
    assert declared.json()["field"] == "body"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        for _ in range(limit // 4096 + 2):
            yield b" " * 4096

    streamed = small_client.request(method, path, headers=headers, content=chunks())
    assert streamed.status_code == 413, streamed.text


def test_the_phone_page_comment_is_bounded_too(small_client: TestClient) -> None:
    assert small_client.post("/a/x.y", content=b"comment=" + b"x" * BODY_LIMIT,
                             headers={"content-type": "application/x-www-form-urlencoded"},
                             ).status_code == 413


def test_a_csv_import_under_the_limit_is_read_in_chunks_and_imported(
    small_client: TestClient, auth: TokenMaker
) -> None:
    data = _csv(3000)
    assert len(data) < IMPORT_LIMIT

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 1000):  # splits rows (and a UTF-8 sequence) anywhere
            yield data[start:start + 1000]

    response = small_client.post("/devices/import", content=chunks(),
                                 headers=auth() | {"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 3000


def test_a_csv_import_names_the_line_that_is_not_utf8(client: TestClient,
                                                      auth: TokenMaker) -> None:
    data = _csv(2000) + b"wm-bad-1,water_meter,\xb6\xab\xb4\xe5,east\n"
    response = client.post("/devices/import", content=data,
                           headers=auth() | {"content-type": "text/csv"})
    assert response.status_code == 422 and "line 2002: not UTF-8" in response.json()["detail"]


def _broadcast(scope: dict[str, object]) -> dict[str, object]:
    return {"scope": scope, "text": "停水通知"}


@pytest.mark.parametrize("scope", [
    {"kind": "village", "township": "TZ", "village": "NOPE"},  # exists nowhere
    {"kind": "village", "township": "west", "village": "west-1"},  # exists, elsewhere
    {"kind": "township", "township": "west"},
    {"kind": "speakers", "speakers": ["nosuch-1"]},
    {"kind": "speakers", "speakers": [device_id("speaker", "west-1")]},
    {"kind": "speakers", "speakers": [device_id("speaker", "east-1"),
                                      device_id("speaker", "east-2")]},
    {"kind": "group", "group": "nosuch"},
])
def test_a_village_token_is_refused_outside_its_scope_and_told_nothing_about_it(
    client: TestClient, auth: TokenMaker, scope: dict[str, object]
) -> None:
    response = client.post("/broadcasts", headers=auth(Role.OPERATOR, "east", "east-1"),
                           json=_broadcast(scope))
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    for outside in ("west", "east-2", "(", "registered"):
        if outside not in str(scope):
            assert outside not in detail, detail


def test_a_village_token_broadcasts_within_its_scope(client: TestClient,
                                                     auth: TokenMaker) -> None:
    operator = auth(Role.OPERATOR, "east", "east-1")
    own = device_id("speaker", "east-1")
    assert client.post("/broadcasts", headers=operator,
                       json=_broadcast({"kind": "speakers", "speakers": [own]})).status_code == 201
    assert client.post("/broadcasts", headers=operator, json=_broadcast(
        {"kind": "village", "township": "east", "village": "east-1"})).status_code == 201


def test_a_county_token_is_told_what_does_not_exist(client: TestClient,
                                                    auth: TokenMaker) -> None:
    response = client.post("/broadcasts", headers=auth(Role.OPERATOR),
                           json=_broadcast({"kind": "speakers", "speakers": ["nosuch-1"]}))
    assert response.status_code == 422 and "nosuch-1" in response.json()["detail"]


@pytest.mark.parametrize(("path", "field"), [
    ("/devices?kind=%00", "query.kind"),
    ("/devices?village=a%00b", "query.village"),
    ("/devices/a%00b", "path.device_id"),
    ("/devices/a%00b/latest", "path.device_id"),
    ("/alerts?state=firing&village=%00", "query.village"),
    ("/broadcasts/b%00", "path.broadcast_id"),
])
def test_a_nul_in_a_parameter_is_a_problem_naming_it(client: TestClient, auth: TokenMaker,
                                                    path: str, field: str) -> None:
    response = client.get(path, headers=auth())
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/broadcasts", {"scope": {"kind": "county"}, "text": "停水\u0000"}, "body.text"),
    ("/devices", {"device_id": "wm-nul-1", "kind": "water_meter", "village": "east-1",
                  "township": "east", "tags": {"k": "v\u0000"}}, "body.tags.k"),
    ("/broadcast-schedules", {"name": "x", "cron": "0 7 * * *", "request": {
        "scope": {"kind": "county"}, "text": "a", "audio_url": None},
        "timezone": "\u0000"}, "body.timezone"),
])
def test_a_nul_in_a_body_field_is_a_problem_naming_it(
    client: TestClient, auth: TokenMaker, path: str, body: dict[str, object], field: str
) -> None:
    response = client.post(path, headers=auth(), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
