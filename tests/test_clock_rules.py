"""No test reads the calendar of the machine that runs it.

A test that takes today's date, or "now" in a local zone, from the machine's clock passes at
some hours and fails at others. Tests that need a calendar take a pinned instant from
`tests/clock.py`; tests that need the real clock (a running service judges times against it)
read it in UTC and compute what they expect from that same instant.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def calendar_reads(source: str) -> list[str]:
    """Calls in `source` that read a local date or time from the machine's clock."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        call = ast.unparse(node)
        name = node.func.attr
        if name == "today" or name in {"localtime", "mktime"}:
            found.append(call)
        elif name in {"now", "utcnow"} and ast.unparse(node.func.value) == "datetime":
            if name == "utcnow" or [ast.unparse(a) for a in node.args] != ["UTC"]:
                found.append(call)
    return found


def test_the_rule_finds_local_calendar_reads() -> None:
    assert calendar_reads("date.today(); datetime.now(); datetime.now(ZONE); time.localtime()") \
        == ["date.today()", "datetime.now()", "datetime.now(ZONE)", "time.localtime()"]
    assert calendar_reads("datetime.now(UTC); datetime(2026, 1, 1, tzinfo=UTC).astimezone(Z)") == []


def test_no_test_reads_the_local_calendar() -> None:
    offenders = {
        str(path.relative_to(TESTS)): reads
        for path in sorted(TESTS.rglob("*.py"))
        if (reads := calendar_reads(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
