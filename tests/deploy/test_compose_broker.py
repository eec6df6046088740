"""The compose broker: the dynamic security plugin seeded by broker-config, kept live by the
access service; the file-based configuration kept for brokers without the plugin."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ground.local import NO_LOSS_BROKER_SETTINGS
from tests.deploy.compose_model import APP_IMAGE, LONG_RUNNING, ROOT, out_dir_of
from village.commands.broker import DYNSEC_FILE


def _mosquitto_mount(services: dict[str, Any], volume: str) -> str:
    return str(next(v["target"] for v in services["mosquitto"]["volumes"]
                    if v.get("source") == volume))


def _conf_value(conf: str, key: str) -> str:
    (value,) = [line.split(None, 1)[1] for line in conf.splitlines()
                if line.startswith(key + " ")]
    return value


def test_broker_files_flow_from_broker_config_to_mosquitto_and_services(
    model: dict[str, Any],
) -> None:
    services = model["services"]
    out_dir, writer_volume = out_dir_of(services["broker-config"], "--out")
    for variant in ("mosquitto.conf", "mosquitto-files.conf"):
        lines = (ROOT / "deploy/mosquitto" / variant).read_text().splitlines()
        for line in NO_LOSS_BROKER_SETTINGS.splitlines():
            assert line in lines, (variant, line)
        assert "allow_anonymous false" in lines and "allow_anonymous true" not in lines, variant
    seeds = _mosquitto_mount(services, writer_volume)
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert _conf_value(conf, "acl_file") == f"{seeds}/acl"
    files = (ROOT / "deploy/mosquitto/mosquitto-files.conf").read_text()
    assert _conf_value(files, "password_file") == f"{seeds}/passwd"
    assert _conf_value(files, "acl_file") == f"{seeds}/acl"
    # The broker's files: Mosquitto's group may read them, nobody else.
    argv = services["broker-config"]["command"]
    group = argv[argv.index("--broker-group") + 1]
    assert group in services["broker-config"]["group_add"]
    for name in LONG_RUNNING:
        assert not any(v.get("source") == writer_volume for v in services[name]["volumes"]), name


def test_the_broker_runs_the_plugin_from_broker_configs_seed_and_access_keeps_it_live(
    model: dict[str, Any],
) -> None:
    services = model["services"]
    mosquitto = services["mosquitto"]
    argv = services["broker-config"]["command"]
    assert "--dynsec" in argv  # the plugin's seed file, and live access switched on
    _, writer_volume = out_dir_of(services["broker-config"], "--out")
    mounts = {v["target"]: v for v in mosquitto["volumes"]}
    script = mosquitto["command"][-1]
    assert mosquitto["command"] == ["sh", script] and mounts[script]["type"] == "bind"
    text = Path(mounts[script]["source"]).read_text()
    assert f"${{DYNSEC_SEED:-{_mosquitto_mount(services, writer_volume)}/{DYNSEC_FILE}}}" in text
    conf_path = "/mosquitto/config/mosquitto.conf"
    assert f"${{MOSQUITTO_CONFIG:-{conf_path}}}" in text
    conf = Path(mounts[conf_path]["source"]).read_text()
    live = _conf_value(conf, "plugin_opt_config_file")
    assert f'${{DYNSEC_FILE:-{live}}}' in text
    # The plugin rewrites its live file: it lies in the broker's own writable volume.
    data = _conf_value(conf, "persistence_location").rstrip("/")
    assert live.startswith(data + "/") and mounts[data]["type"] == "volume"
    assert not mounts[data].get("read_only")
    # The image's plugin path (eclipse-mosquitto installs it in /usr/lib).
    assert _conf_value(conf, "plugin") == "/usr/lib/mosquitto_dynamic_security.so"
    assert _conf_value(conf, "set_tcp_nodelay") == "true"  # the plugin's answers at once
    # The access daemon runs with its own logins (access.env: svc-access) once the broker is up.
    access = services["access"]
    assert access["command"] == ["village", "broker-access"]
    assert access["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    assert argv[argv.index("--broker-url") + 1] == "mqtt://mosquitto:1883"


def test_simulated_devices_log_in_with_their_own_secrets(model: dict[str, Any]) -> None:
    simulators = model["services"]["simulators"]
    argv = simulators["command"]
    secrets_file = Path(argv[argv.index("--secrets") + 1])
    assert "--register" in argv
    volume = next(v for v in simulators["volumes"] if v["target"] == str(secrets_file.parent))
    assert volume["type"] == "volume"
    assert simulators["environment"]["VILLAGE_MQTT_URL"] == "mqtt://mosquitto:1883"
    assert simulators["depends_on"]["access"]["condition"] == "service_healthy"


def test_every_volume_an_app_service_writes_is_a_directory_of_the_image(
        model: dict[str, Any]) -> None:
    # A fresh named volume takes the owner of the image's directory; one the image lacks
    # would belong to root, and the unprivileged service could not write it.
    made = set(re.findall(r"/var/lib/village/[a-z-]+",
                          (ROOT / "Dockerfile").read_text().split("USER village")[0]))
    for name, service in model["services"].items():
        if not service["image"].startswith(APP_IMAGE):
            continue
        for volume in service.get("volumes", []):
            if volume["type"] == "volume" and not volume.get("read_only"):
                assert volume["target"] in made, (name, volume["target"])
