"""Commands to devices by op (`set_valve`, a speaker's `set_volume`...): what may be sent to
which device, by whom, checked before anything is recorded or sent (pure).

The op and its arguments are checked against the contract's command models, the op against
what each target's kind declares (`devices/` kinds), and the caller's role and scope
against each target's place. The first problem found is the error, naming the device or
argument; nothing is sent then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from devices.catalogue import KIND_BY_NAME
from devices.models import Command
from ground.errors import Denied, Invalid
from ground.principal import Place, Principal, Role

_COMMAND = TypeAdapter(Command)
# Who may send an op, at least: operators, over their own place; a village cadre never.
DEFAULT_OP_ROLE = Role.OPERATOR
OP_ROLES: Mapping[str, Role] = {"set_valve": Role.OPERATOR}
# Ops a device only takes if it has what they act on, and how we know it has.
VALVE_OP = "set_valve"


class CommandError(Invalid):
    """A command that cannot be sent as asked; the message names what is wrong."""


class CommandDenied(Denied):
    """The caller may not send this op to one of the devices."""


@dataclass(frozen=True, slots=True)
class Target:
    """A device a command is meant for, as the registry knows it."""

    device_id: str
    kind: str
    township: str | None
    village: str
    lifecycle: str
    has_valve: bool  # it has reported `valve_open`
    gateway_id: str | None = None  # the gateway that carries its readings, if one does

    @property
    def place(self) -> Place:
        """Where the device is."""
        return Place(self.township, self.village)


def build_command(op: str, args: Mapping[str, Any], command_id: str,
                  expires_at: datetime) -> Command:
    """The contract's command for this op and these arguments, or CommandError naming the
    unknown op, the missing argument or the bad value."""
    reserved = {"id", "op", "expires_at"} & set(args)
    if reserved:
        raise CommandError(f"{sorted(reserved)[0]!r} is not an argument one may set")
    document = {**args, "id": command_id, "op": op, "expires_at": expires_at}
    try:
        return _COMMAND.validate_python(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["type"] == "union_tag_invalid":
            raise CommandError(f"unknown op {op!r}") from None
        where = ".".join(str(part) for part in error["loc"][1:]) or op
        if error["type"] == "missing":
            raise CommandError(f"{op}: missing argument {where!r}") from None
        if error["type"] == "extra_forbidden":
            raise CommandError(f"{op}: unknown argument {where!r}") from None
        raise CommandError(f"{op}: {where}: {error['msg']}") from None


def check_targets(principal: Principal, op: str, targets: Sequence[Target],
                  missing: Sequence[str] = ()) -> None:
    """Refuse unknown or retired devices, kinds without the op, meters without a valve, and
    devices outside what the caller may command."""
    if missing:
        raise CommandError(f"{missing[0]!r} is not registered")
    if not targets:
        raise CommandError("no device matches the selection")
    needed = OP_ROLES.get(op, DEFAULT_OP_ROLE)
    for target in targets:
        kind = KIND_BY_NAME.get(target.kind)
        ops = kind.command_ops if kind is not None else ()
        if target.lifecycle != "active":
            raise CommandError(f"{target.device_id} is {target.lifecycle}")
        if op not in ops:
            known = ", ".join(ops) or "none"
            raise CommandError(f"{target.device_id} is a {target.kind}, which takes no {op!r}"
                               f" (its ops: {known})")
        if target.gateway_id is not None:
            # The contract gives a gateway its devices' readings only: no command reaches them.
            raise CommandError(f"{target.device_id} is carried by gateway {target.gateway_id},"
                               " which relays readings only: it cannot receive commands")
        if op == VALVE_OP and not target.has_valve:
            raise CommandError(f"{target.device_id} has no valve (it never reported valve_open)")
        if not principal.may(needed, target.place):
            raise CommandDenied(f"{principal.name} ({principal.role.label}) may not send"
                                f" {op} to {target.device_id} in {target.place.label()}")
