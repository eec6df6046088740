"""Health, readiness, metrics, problem details, and the offline API docs."""

from __future__ import annotations

import re
import time

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ground.local import MosquittoServer, free_port
from ground.settings import SettingsError
from tests.api.conftest import TokenMaker, insert_alert
from village.api.app import create_app
from village.api.prom import GAUGES, render
from village.settings import Settings


def test_healthz_and_readyz_with_database_and_broker(settings: Settings,
                                                     mosquitto: MosquittoServer) -> None:
    settings = settings.model_copy(update={"mqtt_url": mosquitto.url})
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        for _ in range(50):
            ready = client.get("/readyz")
            if ready.status_code == 200:
                break
            time.sleep(0.1)
        assert ready.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_names_what_is_unreachable(settings: Settings) -> None:
    down = settings.model_copy(update={
        "database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"})
    with TestClient(create_app(down)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "unreachable", "broker": "unreachable"}


def test_metrics_come_from_sql(client: TestClient, seeded: str) -> None:
    with psycopg.connect(seeded) as conn:
        conn.execute("INSERT INTO dead_letters (topic, reason, detail, payload, payload_bytes)"
                     " VALUES ('sv/x/telemetry', 'bad_json', 'x', '\\x00', 1)")
    insert_alert(seeded, severity="critical")
    text = client.get("/metrics").text
    assert 'village_alerts_open{severity="critical",acknowledged="false"} 1.0' in text
    assert "# TYPE village_broadcasts gauge" in text
    assert 'village_dead_letters{reason="bad_json"} 1.0' in text
    assert 'village_devices{kind="water_meter",status="offline"} 4.0' in text
    assert "village_ingest_readings_per_second" in text


def test_prometheus_rendering_escapes_labels() -> None:
    gauge = GAUGES[0]
    text = render(gauge, ["reason"], [('say "hi"\n', 2)])
    assert text.splitlines()[-1] == f'{gauge.name}{{reason="say \\"hi\\"\\n"}} 2.0'


def test_tokens_are_required(client: TestClient, auth: TokenMaker) -> None:
    for headers in ({}, {"Authorization": "Bearer svt_wrong"}, {"Authorization": "Basic x"}):
        response = client.get("/devices", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"


def test_an_unexpected_error_reaches_no_client_as_a_trace(settings: Settings) -> None:
    app = create_app(settings)

    def broken() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text and "Traceback" not in response.text


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    assert client.get("/nope").headers["content-type"] == "application/problem+json"
    assert client.delete("/healthz").status_code == 405


def test_no_secret_no_start_outside_development(database_url: str) -> None:
    with pytest.raises(SettingsError, match="VILLAGE_ALERTING__LINK_SECRET"):
        create_app(Settings(database_url=database_url))
    assert isinstance(create_app(Settings(database_url=database_url,
                                          alerting={"link_secret": "k" * 32})), FastAPI)


def test_api_docs_load_nothing_from_outside(client: TestClient) -> None:
    page = client.get("/docs").text
    urls = re.findall(r'(?:src|href)=["\']([^"\']+)', page)
    assert urls and all(u.startswith("/") for u in urls), urls
    assert "/openapi.json" in page
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert "http://" not in page and "https://" not in page
    bundle = client.get("/docs-assets/swagger-ui-bundle.js")
    assert len(bundle.content) > 500_000
