"""Whether text and JSON a device sent can be stored and logged as they are (pure).

PostgreSQL's `text` and `jsonb` refuse NUL, UTF-8 cannot encode a lone surrogate (which
JSON's `\\ud800` escape produces), `jsonb` has no NaN, and a deeply nested document
overflows encoders. Device input that fails here is refused with a reason before it
reaches SQL or a log.
"""

from __future__ import annotations

import math

MAX_JSON_DEPTH = 32


def text_problem(text: str) -> str | None:
    """What makes a string unstorable (NUL, a lone surrogate), or None if it is fine."""
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not encodable as UTF-8)"
    return None


def json_problem(value: object, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """What makes a parsed JSON value unstorable as `jsonb`, or None if it is fine."""
    # Iterative, so a hostile depth cannot exhaust the stack here either.
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"a string {problem}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"a number is {item}"
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                return f"nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = text_problem(key) if isinstance(key, str) else None
                    if problem:
                        return f"a key {problem}"
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def clean_text(text: str) -> str:
    """The text with NUL and lone surrogates replaced (for a dead letter's own fields)."""
    if text_problem(text) is None:
        return text
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
