"""What a domain service refuses to do, by kind. Each door tells it its own way: the API
through one table of statuses, the CLI as one line."""

from __future__ import annotations


class Refused(Exception):
    """A request a domain service will not carry out; the message says why, to a person.

    `field` names the input at fault, as the service's caller named it (None: not one field).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(Refused):
    """No such thing, or none the principal may see."""


class Denied(Refused):
    """The principal may not do this here."""


class Conflict(Refused):
    """The request clashes with what is stored (already registered, already retired)."""


class Invalid(Refused):
    """The request itself is malformed or out of bounds."""
