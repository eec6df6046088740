"""One formatter for pydantic validation errors, in the styles its callers use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from ground.validation import field_path, first_error


@pytest.mark.parametrize("loc, options, expected", [
    (("query", "limit"), {"brackets": True}, "query.limit"),
    (("body", "rows", 3, "kind"), {"brackets": True}, "body.rows[3].kind"),
    (("faults", "0", "kind"), {"brackets": True}, "faults[0].kind"),
    (("people", 0, "channels"), {}, "people.0.channels"),
    (("alerting", "link_secret"), {"separator": "__"}, "alerting__link_secret"),
    (("at", "function-after[_aware()]", "datetime"), {}, "at"),
    ((), {}, "whole"),
])
def test_field_paths(loc: tuple[str | int, ...], options: dict[str, object], expected: str) -> None:
    assert field_path(loc, "whole", **options) == expected  # type: ignore[arg-type]


class _Window(BaseModel):
    every: timedelta
    rows: list[int]


def test_first_error_names_the_field_and_says_what_is_wrong() -> None:
    with pytest.raises(ValidationError) as raised:
        _Window.model_validate({"every": "60s", "rows": [1, "x"]})
    assert first_error(raised.value, "window", brackets=True).startswith("every: ")
    with pytest.raises(ValidationError) as raised:
        _Window.model_validate({"every": 60, "rows": [1, "x"]})
    assert first_error(raised.value, "window", brackets=True) == (
        "rows[1]: Input should be a valid integer, unable to parse string as an integer")
    with pytest.raises(ValidationError) as raised:
        _Window.model_validate([])
    assert first_error(raised.value, "window").startswith("window: ")
