"""A batch the database refuses for one message's data: that message is dead-lettered alone,
everything else is stored, once, even if the database goes away halfway."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from devices.topics import Channel, topic
from ground.local import MosquittoServer
from ingest.admit import RegisteredDevice
from ingest.handoff import Message
from ingest.isolate import DeadLetterRefused, Isolation
from ingest.plan import BatchPlan, Parsed, Policy, parse, plan_batch
from ingest.writer import Writer, WriteResult
from tests.ingest.conftest import (
    Publisher,
    ingest_settings,
    register,
    rows,
    running_worker,
    scalar,
    wait_until,
)

NOW = datetime.now(UTC).replace(microsecond=0)
REGISTRY = {"wm-1": RegisteredDevice("water_meter", True, None)}
POISON = 0.5  # no message of a batch has it as its number
# A real constraint, as a stand-in for whatever the database may refuse in a value.
REFUSE_POISON = f"ALTER TABLE readings ADD CONSTRAINT no_poison CHECK (value <> {POISON})"


def batch(count: int, poison_at: Sequence[int]) -> list[Parsed]:
    """`count` one-reading messages of wm-1 (total_m3 = n), poisoned at the given positions."""
    messages = []
    for n in range(count):
        value = POISON if n in poison_at else n
        payload = f'{{"ts": "{(NOW - timedelta(seconds=n)).isoformat()}", "total_m3": {value}}}'
        messages.append(Message("sv/wm-1/telemetry", payload.encode(), n, 1, False, NOW))
    return [parse(m, "sv", Policy().limits) for m in messages]


class CountingWrites:
    """The real writer, counting transactions, and failing once after `fail_after` of them as
    if the database had gone away."""

    def __init__(self, writer: Writer, fail_after: int | None = None) -> None:
        self.writer = writer
        self.fail_after = fail_after
        self.calls = 0

    def __call__(self, plan: BatchPlan) -> WriteResult:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            self.fail_after = None
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return self.writer.write(plan)


def execute(database_url: str, statement: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(statement)


def plan_of(part: Sequence[Parsed]) -> BatchPlan:
    return plan_batch(part, REGISTRY, Policy())


def test_one_refused_message_in_a_thousand_is_found_in_about_2_log2_n_writes(
    database_url: str
) -> None:
    register(database_url, [("wm-1", "water_meter")])
    execute(database_url, REFUSE_POISON)
    items = batch(1000, poison_at=[637])
    writer = Writer(database_url)
    writes = CountingWrites(writer)
    with pytest.raises(psycopg.errors.CheckViolation):
        writer.write(plan_of(items))
    isolation = Isolation(items, Policy())
    result = isolation.run(plan_of, writes)
    writer.close()
    assert (result.readings, result.dead_letters, isolation.refused) == (999, 1, 1)
    # Two halves per level (a level more where a half is odd), and the dead letter.
    assert writes.calls <= 2 * (math.ceil(math.log2(1000)) + 1) + 1
    assert scalar(database_url, "SELECT count(*) FROM readings") == 999
    letter = rows(database_url, "SELECT device_id, reason, detail FROM dead_letters")
    assert [(d, r) for d, r, _ in letter] == [("wm-1", "storage_refused")]
    assert "no_poison" in letter[0][2]


def test_isolation_resumes_after_the_database_went_away_and_stores_each_message_once(
    database_url: str
) -> None:
    register(database_url, [("wm-1", "water_meter")])
    execute(database_url, REFUSE_POISON)
    items = batch(64, poison_at=[5, 40])
    writer = Writer(database_url)
    writes = CountingWrites(writer, fail_after=6)
    isolation = Isolation(items, Policy())
    with pytest.raises(psycopg.OperationalError):
        isolation.run(plan_of, writes)
    committed = scalar(database_url, "SELECT count(*) FROM readings")
    assert 0 < committed < 62
    result = isolation.run(plan_of, writes)  # what the worker's retry does
    writer.close()
    assert isolation.refused == 2
    assert scalar(database_url, "SELECT count(*) FROM readings") == 62
    assert scalar(database_url, "SELECT count(*) FROM dead_letters") == 2
    assert result.readings + result.duplicates == 62


def test_a_refused_dead_letter_means_a_broken_database_not_bad_data(database_url: str) -> None:
    register(database_url, [("wm-1", "water_meter")])
    execute(database_url, REFUSE_POISON)
    execute(database_url, "ALTER TABLE dead_letters ADD CONSTRAINT none CHECK (false) NOT VALID")
    writer = Writer(database_url)
    with pytest.raises(DeadLetterRefused):
        Isolation(batch(4, poison_at=[2]), Policy()).run(plan_of, writer.write)
    writer.close()


def test_the_worker_stores_the_rest_of_a_refused_batch_and_never_meets_the_poison_again(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    register(database_url, [("wm-1", "water_meter")])
    execute(database_url, REFUSE_POISON)
    meter = topic(topic_prefix, "wm-1", Channel.TELEMETRY)
    settings = ingest_settings(database_url, mosquitto.url, topic_prefix,
                               batch_max_wait_ms=300)
    pub = Publisher(mosquitto.url)
    with running_worker(settings) as worker:
        for n in range(200):
            value = POISON if n == 77 else n
            pub.publish(meter, {"ts": (NOW - timedelta(seconds=n)).isoformat(),
                                "total_m3": value})
        pub.flush()
        wait_until(lambda: worker.stats.messages == 200, what="every message handled")
        assert (worker.stats.isolated, worker.stats.acked) == (1, 200)
    # A restarted worker (same client id, persistent session) is not sent the poison again.
    with running_worker(settings) as worker:
        pub.publish(meter, {"ts": (NOW + timedelta(seconds=1)).isoformat(), "total_m3": 1000})
        pub.flush()
        wait_until(lambda: worker.stats.messages == 1, what="the sentinel")
    pub.close()
    assert scalar(database_url, "SELECT count(*) FROM readings") == 200
    assert rows(database_url, "SELECT reason, payload_bytes > 0 FROM dead_letters") == [
        ("storage_refused", True)]
