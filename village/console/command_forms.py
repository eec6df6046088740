"""The console's device command forms (pure): which ops a person may send to a kind at a
place, each op's arguments as form fields (read from the contract's command models), and a
posted form back as a command request for the command service, which checks it in full."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from broadcast.command_service import DEFAULT_EXPIRY, CommandRequest
from broadcast.device_command import DEFAULT_OP_ROLE, OP_ROLES, VALVE_OP, CommandError
from devices.catalogue import KIND_BY_NAME
from devices.models import Command
from ground.principal import Place, Principal
from village.console.i18n import WORDS

ARG_PREFIX = "arg_"
# Fields every command carries, set by the service, never typed by a person.
_SET_BY_SERVICE = ("id", "op", "expires_at")
_MODELS: dict[str, type[BaseModel]] = {
    model.model_fields["op"].default: model for model in get_args(get_args(Command)[0])}
DEFAULT_EXPIRY_MINUTES = int(DEFAULT_EXPIRY.total_seconds() // 60)


@dataclass(frozen=True)
class ArgField:
    """One argument of an op as a form field."""

    name: str
    input: Literal["choice", "number", "text"]
    required: bool
    choices: tuple[tuple[str, str], ...] = ()  # (value, the words key of its label)
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None

    @property
    def field(self) -> str:
        """The form field's name."""
        return ARG_PREFIX + self.name


@dataclass(frozen=True)
class OpForm:
    """A form for one op: its arguments."""

    op: str
    fields: tuple[ArgField, ...]


def _label(op: str, name: str, value: str) -> str:
    specific = f"{op}_{name}_{value}"
    return specific if specific in WORDS else value


def _field(op: str, name: str, annotation: Any, required: bool, metadata: list[Any]) -> ArgField:
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    # pydantic keeps a Field's bounds as small objects with one attribute each.
    bound = {name: getattr(m, name) for m in metadata
             for name in ("ge", "le", "max_length") if hasattr(m, name)}
    if annotation is bool:
        values: tuple[str, ...] = ("false", "true")
    elif get_origin(annotation) is Literal:
        values = tuple(str(value) for value in get_args(annotation))
    elif annotation is int:
        return ArgField(name, "number", required, minimum=bound.get("ge"),
                        maximum=bound.get("le"))
    else:
        return ArgField(name, "text", required, max_length=bound.get("max_length"))
    return ArgField(name, "choice", required,
                    tuple((value, _label(op, name, value)) for value in values))


def op_form(op: str) -> OpForm:
    """The form of an op the contract defines."""
    model = _MODELS[op]
    return OpForm(op, tuple(
        _field(op, name, info.annotation, info.is_required(), info.metadata)
        for name, info in model.model_fields.items() if name not in _SET_BY_SERVICE))


def ops_offered(principal: Principal, kind: str, place: Place | None = None,
                has_valve: bool = True) -> list[OpForm]:
    """The forms of the ops `kind` declares that the principal's role allows (over `place`,
    if given: a single device's; else anywhere in their scope). Only a meter that has
    reported its valve is offered `set_valve`."""
    declared = KIND_BY_NAME[kind].command_ops if kind in KIND_BY_NAME else ()
    offered = []
    for op in declared:
        needed = OP_ROLES.get(op, DEFAULT_OP_ROLE)
        allowed = principal.may(needed, place) if place else principal.role >= needed
        if allowed and op in _MODELS and (op != VALVE_OP or has_valve):
            offered.append(op_form(op))
    return offered


def request_from_form(form: Mapping[str, Any], device_ids: list[str] | None = None,
                    filters: Mapping[str, str] | None = None) -> CommandRequest:
    """The request a posted command form makes; CommandError if the expiry is not a number
    (everything else is the command service's to check)."""
    args = {key.removeprefix(ARG_PREFIX): str(value) for key, value in form.items()
            if key.startswith(ARG_PREFIX) and str(value).strip()}
    minutes_text = str(form.get("expires_minutes") or DEFAULT_EXPIRY_MINUTES)
    try:
        expires_in = timedelta(minutes=float(minutes_text))
    except (ValueError, OverflowError):
        raise CommandError(f"expiry {minutes_text!r} is not a number of minutes") from None
    return CommandRequest(op=str(form.get("op", "")), why=str(form.get("why", "")), args=args,
                          device_ids=device_ids, filters=dict(filters or {}),
                          expires_in=expires_in)
