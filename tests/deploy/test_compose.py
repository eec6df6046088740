"""docker-compose.yml validates against the Compose specification and hangs together
(the broker's part: test_compose_broker.py; the Compose CLI: compose_model.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from devices.broker_access import SERVICE_ACCOUNTS
from ground.settings import known_variables
from tests.deploy.compose_model import (
    APP_IMAGE,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    LONG_RUNNING,
    ROOT,
    SECRETS,
    compose,
    compose_cli,
    out_dir_of,
)
from village.cli import app
from village.settings import Settings

PENDING = "org.smart-village.pending-command"


def test_the_compose_file_validates_against_the_compose_specification(filled_env: Path) -> None:
    for profile in ([], ["--profile", "simulators"]):
        result = compose(filled_env, *profile, "config", "--quiet")
        assert result.returncode == 0, result.stderr


def test_the_validator_does_refuse_a_broken_file(filled_env: Path, tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    restart: unless-stopped\n",
                                                       "    restart: unless-stopped\n    bogus: 1\n", 1))
    result = subprocess.run(
        [str(compose_cli()), "-f", str(broken), "--env-file", str(filled_env), "config", "--quiet"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
    )
    assert result.returncode != 0 and "bogus" in result.stderr


def test_no_default_password_works(tmp_path: Path) -> None:
    unchanged = tmp_path / ".env"
    unchanged.write_text(ENV_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    result = compose(unchanged, "config", "--quiet")
    assert result.returncode != 0
    # Compose names the first unset secret it meets, and its order is not fixed.
    assert any(name in result.stderr for name in SECRETS), result.stderr
    for name in SECRETS:
        assert re.search(rf"^{name}=$", ENV_EXAMPLE.read_text(), re.MULTILINE), name
        assert re.search(rf"\${{{name}:\?", COMPOSE_FILE.read_text()), f"{name} needs :? in compose"


def test_env_example_declares_every_variable_compose_reads() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    declared = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert used - declared == set()


def test_dependencies_wait_for_health_or_completion(model: dict[str, Any]) -> None:
    services = model["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            condition = rule["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), name
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
            else:
                assert services[dependency].get("restart") == "no", dependency
    for needed in ("timescaledb", "mosquitto", "grafana", "api"):
        assert services[needed]["healthcheck"]["test"], needed
    published = {int(port["target"]) for port in services["mosquitto"]["ports"]}
    assert published == {8883}, "only the devices' TLS listener leaves the compose network"


def runs_a_command(argv: list[str]) -> bool:
    """Whether `village ARGS...` reaches a command (not a group, not an unknown name)."""
    import click
    from typer.main import get_command

    command: Any = get_command(app)
    for word in argv[1:]:
        if not hasattr(command, "list_commands"):
            break  # a command: the rest are its options and arguments
        command = command.get_command(click.Context(command), word)
        if command is None:
            return False
    return not hasattr(command, "list_commands")


def test_every_service_runs_a_real_village_command(model: dict[str, Any]) -> None:
    app_services = {n: s for n, s in model["services"].items() if s["image"].startswith(APP_IMAGE)}
    assert {"migrate", "broker-config", "access", "ingest", "broadcast", "alerting", "api",
            "grafana-provisioning", "simulators"} <= set(app_services)
    for name, service in app_services.items():
        argv = service["command"]
        assert argv[0] == "village", name
        if PENDING in service.get("labels", {}):
            assert not runs_a_command(argv), f"{name}: {' '.join(argv)} exists now: drop the label"
        else:
            assert runs_a_command(argv), f"{name}: {' '.join(argv)} is not a village command"


def test_the_command_check_can_fail() -> None:
    assert runs_a_command(["village", "broadcast", "daemon"])
    assert not runs_a_command(["village", "broadcast"])
    assert not runs_a_command(["village", "no-such-thing"])


def test_service_settings_are_real_settings(model: dict[str, Any]) -> None:
    known = known_variables(Settings)
    for name, service in model["services"].items():
        village = {k for k in service.get("environment", {}) if k.startswith("VILLAGE_")}
        assert village - known == set(), name


def test_each_service_reads_only_its_own_credentials(model: dict[str, Any]) -> None:
    services = model["services"]
    env_out, volume = out_dir_of(services["broker-config"], "--env-out")
    db_out, db_volume = out_dir_of(services["db-roles"], "--out")
    assert (env_out, volume) == (db_out, db_volume)
    accounts = {account.service for account in SERVICE_ACCOUNTS}
    for name in LONG_RUNNING:
        service = services[name]
        assert name in accounts, name
        mounts = [v for v in service["volumes"] if v.get("source") == volume]
        assert len(mounts) == 1, name
        assert mounts[0]["volume"]["subpath"] == name and mounts[0]["read_only"], name
        assert service["environment"]["SERVICE_ENV_DIR"] == mounts[0]["target"], name
        # Its database login comes from its own db.env, never the owner's URL.
        assert "VILLAGE_DATABASE_URL" not in service["environment"], name
    for name, service in services.items():
        if name not in ("broker-config", "db-roles"):
            assert all(v.get("source") != volume or v.get("volume", {}).get("subpath")
                       for v in service.get("volumes", [])), name
    entrypoint = (ROOT / "deploy/entrypoint.sh").read_text()
    assert '"$SERVICE_ENV_DIR"/*.env' in entrypoint


def test_images_are_pinned_to_the_release_lines_the_docs_name(model: dict[str, Any]) -> None:
    services = model["services"]
    assert re.fullmatch(r"timescale/timescaledb:2\.28\.\d+-pg15", services["timescaledb"]["image"])
    assert re.fullmatch(r"eclipse-mosquitto:2\.0\.\d+", services["mosquitto"]["image"])
    assert re.fullmatch(r"grafana/grafana-oss:11\.6\.\d+", services["grafana"]["image"])
    docs = (ROOT / "docs/deploy.md").read_text()
    for name in ("timescaledb", "mosquitto", "grafana"):
        assert services[name]["image"] in docs, name


def test_devices_reach_the_broker_over_tls_only(model: dict[str, Any]) -> None:
    mosquitto = model["services"]["mosquitto"]
    published = {int(port["target"]) for port in mosquitto["ports"]}
    assert published == {8883}
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    tls = conf[conf.index("listener 8883"):]
    certs = next(v["target"] for v in mosquitto["volumes"] if v["target"].endswith("/certs"))
    assert f"certfile {certs}/server.crt" in tls and f"keyfile {certs}/server.key" in tls
    assert (ROOT / "deploy/mosquitto/certs/README.md").exists()


def test_every_long_running_service_has_a_readiness_healthcheck(model: dict[str, Any]) -> None:
    services = model["services"]
    for name, service in services.items():
        if service.get("restart") == "no" or service.get("profiles"):
            continue  # set-up jobs exit; the demonstration simulators are no service
        assert service.get("healthcheck", {}).get("test"), name
    for name in ("ingest", "broadcast", "alerting"):
        service = services[name]
        test = service["healthcheck"]["test"]
        ready_file = service["environment"]["VILLAGE_READY_FILE"]
        assert test[:4] == ["CMD", "python", "-m", "ground.health"] and test[4] == ready_file, name


def test_the_services_use_the_owner_and_their_own_logins_not_the_superuser(
    model: dict[str, Any],
) -> None:
    for name, service in model["services"].items():
        url = service.get("environment", {}).get("VILLAGE_DATABASE_URL", "")
        assert not url.startswith("postgresql://postgres:"), name
    init = (ROOT / "deploy/timescaledb/10-village-owner.sh").read_text()
    assert "CREATE ROLE village_owner LOGIN CREATEROLE" in init


def test_grafana_gets_the_built_provisioning(model: dict[str, Any]) -> None:
    services = model["services"]
    grafana, builder = services["grafana"], services["grafana-provisioning"]
    assert re.fullmatch(r"grafana/grafana(-oss)?:11\.6\.\d+", grafana["image"])
    argv = builder["command"]
    out_dir, dashboards_path = argv[argv.index("--out") + 1], argv[argv.index("--dashboards-path") + 1]
    volume = next(v["source"] for v in builder["volumes"] if v["target"] == out_dir)
    mount = next(v["target"] for v in grafana["volumes"] if v.get("source") == volume)
    assert grafana["environment"]["GF_PATHS_PROVISIONING"] == f"{mount}/provisioning"
    assert dashboards_path == f"{mount}/dashboards"
    assert grafana["environment"]["GRAFANA_DATASOURCE_PASSWORD"] == "secret1value"


def test_every_file_mounted_from_the_repository_exists(model: dict[str, Any]) -> None:
    binds = [(name, v["source"]) for name, service in model["services"].items()
             for v in service.get("volumes", []) if v["type"] == "bind"]
    assert len(binds) >= 2
    for name, source in binds:
        path = Path(source)
        assert path.is_relative_to(ROOT) and path.exists(), (name, source)
        if path.suffix == ".sh":
            assert os.access(path, os.X_OK), source


def test_more_ingest_workers_each_with_their_own_stable_client_id(filled_env: Path) -> None:
    result = compose(filled_env, "-f", str(ROOT / "deploy/compose.ingest-workers.yml"), "config",
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    workers = {n: s for n, s in services.items()
               if (s.get("command") or [])[:2] == ["village", "ingest"]}
    assert len(workers) == 3
    ids = [s["environment"]["VILLAGE_INGEST__CLIENT_ID"] for s in workers.values()]
    assert len(set(ids)) == len(ids), ids
    for name, worker in workers.items():
        assert set(worker["depends_on"]) == {"db-roles", "mosquitto"}, name
        assert worker["volumes"][0]["volume"]["subpath"] == "ingest", name


def test_services_with_persistent_sessions_name_their_client_id(model: dict[str, Any]) -> None:
    # A host-name default would change whenever Compose re-creates the container, leaving
    # the old session (and its share of queued messages) behind on the broker.
    services = model["services"]
    assert services["ingest"]["environment"]["VILLAGE_INGEST__CLIENT_ID"]
    assert services["broadcast"]["environment"]["VILLAGE_BROADCAST__CLIENT_ID"]


def test_the_entrypoint_loads_every_credential_file_of_the_service(tmp_path: Path) -> None:
    own = tmp_path / "run"
    own.mkdir()
    (own / "db.env").write_text("VILLAGE_DATABASE_URL=postgresql://village_ingest_login:x@db/v\n")
    (own / "mqtt.env").write_text("# comment\nVILLAGE_MQTT_URL=mqtt://svc-ingest:y@broker:1883\n")
    entrypoint = str(ROOT / "deploy/entrypoint.sh")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SERVICE_ENV_DIR": str(own)}
    result = subprocess.run(["sh", entrypoint, "env"], capture_output=True, text=True, env=env,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert "VILLAGE_DATABASE_URL=postgresql://village_ingest_login:x@db/v" in result.stdout
    assert "VILLAGE_MQTT_URL=mqtt://svc-ingest:y@broker:1883" in result.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = subprocess.run(["sh", entrypoint, "env"], capture_output=True, text=True,
                             env={**env, "SERVICE_ENV_DIR": str(empty)}, timeout=30)
    assert refused.returncode == 1 and "db-roles" in refused.stderr


def test_prometheus_scrapes_each_process_at_its_configured_metrics_port(
        model: dict[str, Any]) -> None:
    mounted = {v["target"]: v["source"] for v in model["services"]["prometheus"]["volumes"]
               if v["type"] == "bind"}
    config = yaml.safe_load(Path(mounted["/etc/prometheus/prometheus.yml"]).read_text())
    targets = {job["job_name"]: target for job in config["scrape_configs"]
               for target in job["static_configs"][0]["targets"]}
    defaults = Settings(development=True)
    assert targets == {
        "village-ingest": f"ingest:{defaults.ingest.metrics_port}",
        "village-alerting": f"alerting:{defaults.alerting.metrics_port}",
        "village-broadcast": f"broadcast:{defaults.broadcast.metrics_port}",
        "village-api": "api:8000",
    }
    for service in ("ingest", "alerting", "broadcast", "api"):
        assert service in model["services"], service
