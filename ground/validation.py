"""How a pydantic validation failure is told to people: the first error, with its field."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

# Steps pydantic adds to a location for its own validators and modes; they name no field.
_INTERNAL = ("function-", "lax-", "timedelta", "datetime")


def field_path(loc: Sequence[str | int], whole: str, separator: str = ".",
               brackets: bool = False) -> str:
    """A location as a field path: `people.0.channels`, or with `brackets` `rows[3].kind`
    (`whole` names it when no field is to blame)."""
    text = ""
    for part in (str(p) for p in loc if not str(p).startswith(_INTERNAL)):
        if brackets and part.isdigit():
            text += f"[{part}]"
        else:
            text += f"{separator}{part}" if text else part
    return text or whole


def first_error(exc: ValidationError, whole: str, separator: str = ".",
                brackets: bool = False) -> str:
    """`field.path: message` for the first error (`whole` names it when no field is to blame)."""
    error = exc.errors()[0]
    return f"{field_path(error['loc'], whole, separator, brackets)}: {error['msg']}"
