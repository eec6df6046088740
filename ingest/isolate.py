"""Finding the message a refused batch cannot be stored with, and storing the rest.

When the database refuses a batch for something in its data (not because it is down), the
batch is written in halves, and halves of the half that fails, until the message it
refuses is alone; that message is dead-lettered and every other one is stored. With one
bad message in a batch of n this takes about 2·log2(n) transactions instead of n.

It resumes: if the database goes away halfway, the parts already committed are not
written again when the caller retries, so every message still takes effect exactly once
(dead letters and pending-device counts are not idempotent, readings are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
import psycopg.errors

from devices.rejection import Reason, Rejection
from ingest.plan import BatchPlan, Parsed, Policy, dead_letter, internal_error
from ingest.writer import WriteResult

# What the data can provoke while a batch is written: PostgreSQL refusing a value (class
# 22), a constraint (class 23) or a limit (class 54, e.g. a too deeply nested jsonb), and
# Python failing to adapt a value (an unencodable string, a number out of range).
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded,
                ValueError, TypeError, OverflowError, RecursionError)


def is_data_error(exc: BaseException) -> bool:
    """Whether an error from writing a batch may be one message's fault (so isolate it)."""
    return isinstance(exc, _DATA_ERRORS)


def refusal(exc: BaseException) -> Rejection:
    """Why a message the database (or the adaptation to it) refused is dead-lettered."""
    if not isinstance(exc, psycopg.Error):
        return internal_error(exc)
    # The first line only, bounded: it names the refused value's type and the constraint.
    first_line = (str(exc).strip().splitlines() or [""])[0][:200]
    return Rejection(Reason.STORAGE_REFUSED, f"the database refused it: {first_line}")


def refused_plan(item: Parsed, exc: BaseException, policy: Policy) -> BatchPlan:
    """A plan holding only the dead letter of a message the database refused."""
    letter = dead_letter(item, [refusal(exc)], policy)
    return BatchPlan(dead_letters=[letter], messages=1,
                     internal_errors=int(letter.reason == Reason.INTERNAL_ERROR),
                     latest_received_at=item.message.received_at)


class DeadLetterRefused(Exception):
    """Even a dead letter was refused: the database is broken, not the data."""


@dataclass
class Isolation:
    """The state of writing one refused batch in parts; `run` again after a failure."""

    items: Sequence[Parsed]
    policy: Policy
    # Parts still to write, last first; a part with an error is one message to dead-letter.
    _todo: list[tuple[Sequence[Parsed], BaseException | None]] = field(default_factory=list)
    _totals: list[int] = field(default_factory=lambda: [0] * 5)
    refused: int = 0
    internal_errors: int = 0

    def __post_init__(self) -> None:
        self._todo.append((self.items, None))

    def run(self, plan_of: Callable[[Sequence[Parsed]], BatchPlan],
            write: Callable[[BatchPlan], WriteResult]) -> WriteResult:
        """Write every part not yet committed; return what the whole batch stored."""
        while self._todo:
            part, error = self._todo[-1]
            if error is None:
                try:
                    plan = plan_of(part)
                    result = write(plan)
                except Exception as exc:  # noqa: BLE001 - only data errors are caught below
                    if not is_data_error(exc):
                        raise
                    self._split(exc)
                    continue
                self.internal_errors += plan.internal_errors
            else:
                plan = refused_plan(part[0], error, self.policy)
                try:
                    result = write(plan)
                except Exception as exc:  # noqa: BLE001 - only data errors are caught below
                    if not is_data_error(exc):
                        raise
                    raise DeadLetterRefused(type(exc).__name__) from exc
                self.refused += 1
                self.internal_errors += plan.internal_errors
            self._todo.pop()
            for index, value in enumerate((result.readings, result.duplicates, result.events,
                                           result.dead_letters, result.presence)):
                self._totals[index] += value
        return WriteResult(*self._totals)

    def _split(self, exc: BaseException) -> None:
        part, _ = self._todo.pop()
        if len(part) == 1:
            self._todo.append((part, exc))
            return
        middle = len(part) // 2
        self._todo.append((part[middle:], None))
        self._todo.append((part[:middle], None))
