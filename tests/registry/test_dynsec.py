"""The dynamic security plugin's commands and file, built from the registry (pure)."""

from __future__ import annotations

import base64

import pytest

from devices.broker_access import BrokerAccessError
from devices.credentials import hash_secret
from devices.dynsec import (
    ACCESS_ACCOUNT,
    Grant,
    Revoke,
    device_usernames,
    grant_commands,
    plugin_config,
    revoke_commands,
    stale_logins,
)


def test_a_device_login_is_bound_to_its_own_client_id() -> None:
    (create,) = grant_commands("sv", Grant("wm-1", "s3cret", gateway=False), exists=False)
    assert create == {"command": "createClient", "username": "wm-1", "clientid": "wm-1",
                      "roles": [], "password": "s3cret"}
    (modify,) = grant_commands("sv", Grant("wm-1", "n3w", gateway=False), exists=True)
    assert modify["command"] == "modifyClient" and modify["password"] == "n3w"


def test_a_gateway_gets_a_role_for_its_gateway_topic_only() -> None:
    role, client = grant_commands("sv", Grant("gw-1", "s", gateway=True), exists=False)
    assert role["acls"] == [{"acltype": "publishClientSend", "topic": "sv/gw-1/gateway/telemetry",
                             "allow": True}]
    assert client["roles"] == [{"rolename": "gateway:gw-1"}]
    assert [c["command"] for c in revoke_commands(Revoke("gw-1", gateway=True))] == [
        "deleteClient", "deleteRole"]


@pytest.mark.parametrize("bad", ["wm/1", "wm+", "#", "a b", "x"])
def test_names_that_could_widen_a_topic_are_refused(bad: str) -> None:
    with pytest.raises(BrokerAccessError):
        grant_commands("sv", Grant(bad, "s", gateway=False), exists=False)


def test_the_plugin_file_carries_the_registry_hash_as_it_is() -> None:
    hashed = hash_secret("s3cret", salt=b"0123456789ab")
    config = plugin_config("sv", [(ACCESS_ACCOUNT, hashed)], [("wm-1", hashed, False)])
    access, meter = config["clients"]
    assert access["roles"] == [{"rolename": "village-access"}] and "clientid" not in access
    assert meter["clientid"] == "wm-1" and meter["iterations"] == 101
    assert base64.b64decode(meter["salt"]) == b"0123456789ab"
    assert f"${meter['salt']}${meter['password']}" in hashed
    assert config["defaultACLAccess"]["publishClientReceive"] is False


def test_reconciling_drops_only_device_logins_the_registry_does_not_grant() -> None:
    answer = {"command": "listClients", "data": {"clients": ["svc-ingest", "wm-1", "wm-2"]}}
    broker = device_usernames(answer)
    assert broker == {"wm-1", "wm-2"}
    assert stale_logins(broker, {"wm-1", "wm-3"}) == ["wm-2"]
