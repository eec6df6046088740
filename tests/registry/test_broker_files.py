"""Secrets and the broker's passwd and ACL texts (pure, plus Mosquitto's own hashing tool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from devices.broker_access import (
    SERVICE_ACCOUNTS,
    BrokerAccessError,
    acl_text,
    passwd_lines,
    service_secret,
)
from devices.credentials import (
    HashFormatError,
    check_hash_format,
    generate_secret,
    hash_secret,
    verify_secret,
)


def test_hash_is_mosquittos_format_and_verifies_only_its_secret() -> None:
    secret = generate_secret()
    hashed = hash_secret(secret)
    assert check_hash_format(hashed) == hashed
    assert hashed.startswith("$7$101$")
    assert secret not in hashed
    assert verify_secret(secret, hashed)
    assert not verify_secret(secret + "x", hashed)
    assert hash_secret(secret) != hashed  # a fresh salt each time


def test_secrets_are_long_random_and_url_safe() -> None:
    secrets = {generate_secret() for _ in range(200)}
    assert len(secrets) == 200
    assert all(len(s) == 32 and s.replace("-", "").replace("_", "").isalnum() for s in secrets)


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd")
def test_a_hash_written_by_mosquitto_passwd_verifies(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "wm-1", "s3cret"], check=True)
    name, hashed = path.read_text().strip().split(":", 1)
    assert name == "wm-1"
    assert verify_secret("s3cret", check_hash_format(hashed))
    assert not verify_secret("s3cre", hashed)


@pytest.mark.parametrize("bad", ["", "$6$abc$def", "$7$101$short$x==", "plain"])
def test_malformed_hashes_are_refused(bad: str) -> None:
    with pytest.raises(HashFormatError):
        check_hash_format(bad)
    assert not verify_secret("x", bad)


def test_acl_gives_devices_only_their_own_topics_and_gateways_their_gateway_topic() -> None:
    text = acl_text("sv", ["gw-1"])
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    patterns = [line for line in lines if line.startswith("pattern")]
    assert patterns == [
        "pattern write sv/%u/telemetry", "pattern write sv/%u/event",
        "pattern write sv/%u/status", "pattern write sv/%u/cmd/ack", "pattern read sv/%u/cmd"]
    assert lines[-2:] == ["user gw-1", "topic write sv/gw-1/gateway/telemetry"]
    # No device-wide wildcard write other than the services' own lines.
    assert not any("#" in line for line in lines)


def test_service_accounts_get_what_their_job_needs() -> None:
    text = acl_text("sv", [])
    blocks = {block.split("user ", 1)[1].split("\n", 1)[0]: block for block in text.split("\n\n")
              if "user " in block}
    assert set(blocks) == {a.username for a in SERVICE_ACCOUNTS}
    assert "topic read sv/+/telemetry" in blocks["svc-ingest"]
    assert "write" not in blocks["svc-ingest"].replace("# ", "")
    assert "topic write sv/+/cmd\n" in blocks["svc-broadcast"] + "\n"
    assert "telemetry" not in blocks["svc-broadcast"]


@pytest.mark.parametrize("name", ["gw-1\nuser svc-ingest", "gw/+", "gw-%u", "g", "gw 1", "#"])
def test_names_cannot_inject_lines_or_patterns(name: str) -> None:
    with pytest.raises(BrokerAccessError):
        acl_text("sv", [name])
    with pytest.raises(BrokerAccessError):
        list(passwd_lines([(name, hash_secret("x"))]))


@pytest.mark.parametrize("prefix", ["sv/#", "", "a b", "sv\nuser x"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(BrokerAccessError):
        acl_text(prefix, [])


def test_passwd_lines_refuse_a_hash_mosquitto_cannot_read() -> None:
    hashed = hash_secret("x")
    assert list(passwd_lines([("wm-1", hashed)])) == [f"wm-1:{hashed}\n"]
    with pytest.raises(BrokerAccessError, match="wm-1: not a Mosquitto"):
        list(passwd_lines([("wm-1", hashed + "\nsvc-ingest:x")]))


def test_service_secret_is_kept_while_it_matches_and_replaced_otherwise() -> None:
    secret = generate_secret()
    hashed = hash_secret(secret)
    kept = service_secret(hashed, secret, rotate=False)
    assert (kept.secret, kept.new_hash) == (secret, None)
    for stored, known, rotate in [(hashed, secret, True), (hashed, "other", False),
                                  (None, secret, False), (hashed, None, False)]:
        fresh = service_secret(stored, known, rotate)
        assert fresh.secret != secret
        assert fresh.new_hash is not None and verify_secret(fresh.secret, fresh.new_hash)
