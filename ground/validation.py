"""How a pydantic validation failure is told to people: the first error, with its field."""

from __future__ import annotations

from pydantic import ValidationError


def first_error(exc: ValidationError, whole: str) -> str:
    """`field.path: message` for the first error (`whole` names it when no field is to blame)."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or whole
    return f"{where}: {error['msg']}"
