"""A private Mosquitto started with what `village broker-config` writes from the registry:
passwd and ACL files, or the dynamic security plugin's file (then kept live by the daemon)."""

from __future__ import annotations

import time

from devices.topics import Channel
from ground.settings import parse_mqtt_url
from tests.registry.conftest import ACCEPTED, NOT_AUTHORIZED, Deployment
from tests.registry.mqtt_session import Session


def test_a_device_publishes_its_telemetry_and_receives_its_commands(
        any_deployment: Deployment) -> None:
    ingest = any_deployment.service("ingest")
    share = f"$share/ingest/{any_deployment.prefix}/+/telemetry"
    assert ingest.subscribe(share) == [1]
    broadcast = any_deployment.service("broadcast")
    meter = any_deployment.device("wm-b1")
    assert meter.connack == "Success"
    assert meter.subscribe(any_deployment.topic("wm-b1", Channel.COMMAND)) == [1]
    assert meter.publish(any_deployment.topic("wm-b1", Channel.TELEMETRY), b'{"total_m3": 1}') in ACCEPTED
    assert ingest.wait_for(1) == [(any_deployment.topic("wm-b1", Channel.TELEMETRY), b'{"total_m3": 1}')]
    assert broadcast.publish(any_deployment.topic("wm-b1", Channel.COMMAND), b'{"op": "x"}') in ACCEPTED
    assert meter.wait_for(1) == [(any_deployment.topic("wm-b1", Channel.COMMAND), b'{"op": "x"}')]
    for channel in (Channel.EVENT, Channel.STATUS, Channel.COMMAND_ACK):
        assert meter.publish(any_deployment.topic("wm-b1", channel)) in ACCEPTED


def test_a_device_cannot_speak_as_another_nor_read_anothers_commands(
        any_deployment: Deployment) -> None:
    ingest = any_deployment.service("ingest")
    ingest.subscribe(f"{any_deployment.prefix}/#")
    broadcast = any_deployment.service("broadcast")
    meter = any_deployment.device("wm-b1")
    other = any_deployment.device("wm-b2")
    other.subscribe(any_deployment.topic("wm-b2", Channel.COMMAND))
    for channel in (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS, Channel.COMMAND_ACK,
                    Channel.COMMAND, Channel.GATEWAY_TELEMETRY):
        assert meter.publish(any_deployment.topic("wm-b2", channel)) == NOT_AUTHORIZED, channel
    # Not even its own gateway topic: only gateways carry other devices' readings.
    assert meter.publish(any_deployment.topic("wm-b1", Channel.GATEWAY_TELEMETRY)) == NOT_AUTHORIZED
    assert meter.publish(f"{any_deployment.prefix}/wm-b1/other") == NOT_AUTHORIZED
    # Mosquitto 2.0.11 grants the SUBSCRIBE, then filters every delivery by the read rules.
    meter.subscribe(any_deployment.topic("wm-b2", Channel.COMMAND))
    meter.subscribe(f"{any_deployment.prefix}/+/cmd")
    assert broadcast.publish(any_deployment.topic("wm-b2", Channel.COMMAND), b"for b2") in ACCEPTED
    assert other.wait_for(1) == [(any_deployment.topic("wm-b2", Channel.COMMAND), b"for b2")]
    time.sleep(0.5)
    assert meter.messages == []
    assert ingest.messages == []  # nothing forged reached the platform, and ingest reads no cmd


def test_a_gateway_publishes_for_its_children(any_deployment: Deployment) -> None:
    ingest = any_deployment.service("ingest")
    ingest.subscribe(f"$share/ingest/{any_deployment.prefix}/+/gateway/telemetry")
    gateway = any_deployment.device("gw-b1")
    gateway_topic = any_deployment.topic("gw-b1", Channel.GATEWAY_TELEMETRY)
    assert gateway.publish(gateway_topic, b'{"wm-b3": {"total_m3": 2}}') in ACCEPTED
    assert ingest.wait_for(1) == [(gateway_topic, b'{"wm-b3": {"total_m3": 2}}')]


def test_services_have_only_the_rights_of_their_job(any_deployment: Deployment) -> None:
    ingest = any_deployment.service("ingest")
    assert ingest.connack == "Success"
    assert ingest.publish(any_deployment.topic("wm-b1", Channel.COMMAND)) == NOT_AUTHORIZED
    assert ingest.publish(any_deployment.topic("wm-b1", Channel.TELEMETRY)) == NOT_AUTHORIZED
    broadcast = any_deployment.service("broadcast")
    assert broadcast.publish(any_deployment.topic("wm-b1", Channel.TELEMETRY)) == NOT_AUTHORIZED
    for name in ("alerting", "api"):
        service = any_deployment.service(name)
        assert service.publish(any_deployment.topic("wm-b1", Channel.COMMAND)) in ACCEPTED
        assert service.publish(any_deployment.topic("wm-b1", Channel.STATUS)) == NOT_AUTHORIZED


def test_wrong_or_missing_credentials_are_refused(any_deployment: Deployment) -> None:
    assert any_deployment.device("wm-b1", secret="not-the-secret").connack == NOT_AUTHORIZED
    assert any_deployment.device("wm-b1", secret=any_deployment.secrets["wm-b2"]).connack == NOT_AUTHORIZED
    assert any_deployment.device("wm-zz", secret="anything").connack == NOT_AUTHORIZED
    anonymous = Session(parse_mqtt_url(any_deployment.server.url), "anon").connect()
    any_deployment.sessions.append(anonymous)
    assert anonymous.connack == NOT_AUTHORIZED


def test_after_rotation_and_reload_the_old_secret_is_refused(deployment: Deployment) -> None:
    old = deployment.secrets["wm-b1"]
    rotated = deployment.village("devices", "rotate-secret", "wm-b1")
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip()
    assert deployment.device("wm-b1", secret=new).connack == NOT_AUTHORIZED  # not reloaded yet
    ingest_before = (deployment.conf / "ingest.env").read_text()
    deployment.reconfigure()
    assert deployment.device("wm-b1", secret=old).connack == NOT_AUTHORIZED
    assert deployment.device("wm-b1", secret=new).connack == "Success"
    # Services keep their secrets across runs: nothing to redistribute.
    assert (deployment.conf / "ingest.env").read_text() == ingest_before
    assert deployment.service("ingest").connack == "Success"


def test_rotating_service_secrets_rewrites_their_env_files(deployment: Deployment) -> None:
    before = (deployment.conf / "ingest.env").read_text()
    result = deployment.village("broker-config", "--out", str(deployment.conf),
                                "--rotate-services", "--reload",
                                "--pid-file", str(deployment.pid_file))
    assert result.exit_code == 0, result.output
    time.sleep(0.5)
    after = (deployment.conf / "ingest.env").read_text()
    assert after != before
    assert oct((deployment.conf / "ingest.env").stat().st_mode & 0o777) == "0o600"
    old = Session(parse_mqtt_url(before.splitlines()[-1].partition("=")[2]), "old").connect()
    deployment.sessions.append(old)
    assert old.connack == NOT_AUTHORIZED
    assert deployment.service("ingest").connack == "Success"


def test_a_retired_device_loses_its_login_at_the_next_reload(deployment: Deployment) -> None:
    assert deployment.village("devices", "retire", "wm-b2").exit_code == 0
    deployment.reconfigure()
    assert deployment.device("wm-b2").connack == NOT_AUTHORIZED
    assert deployment.device("wm-b1").connack == "Success"
