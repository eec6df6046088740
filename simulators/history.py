"""History, generated fast and deterministically: the messages a population sent over days (pure).

The back-fill publishes these through MQTT; `readings_of` decodes them with ingest's own
decoder for tests and dashboards that want rows rather than messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from devices.catalogue import kind_named
from devices.decode import (
    EventRecord,
    Limits,
    Reading,
    Rejection,
    decode_events,
    decode_telemetry,
    parse_json,
    split_gateway,
)
from devices.topics import Channel
from simulators.build import ModelOptions, build_models
from simulators.device import SimDevice
from simulators.faults import FaultWindow
from simulators.payloads import Outgoing


@dataclass(frozen=True)
class Backfill:
    """What to generate: from `start` for `days`, in store-and-forward batches of `batch`."""

    start: datetime
    days: float
    seed: int = 0
    batch: timedelta = timedelta(hours=6)
    nb_iot_share: float = 0.3

    @property
    def end(self) -> datetime:
        """When the generated history ends."""
        return self.start + timedelta(days=self.days)


def history(devices: Sequence[SimDevice], plan: Backfill,
            faults: Iterable[tuple[str, FaultWindow]] = ()) -> Iterator[list[Outgoing]]:
    """Every batch's messages, in time order; the same population and plan give the same bytes.

    `faults` are (device id, window) pairs acted out on the way. Each device sends what it
    measured since its last batch as one array (an NB-IoT meter still waits for its daily
    upload), as a device does after an outage.
    """
    options = ModelOptions(start=plan.start, seed=plan.seed, nb_iot_share=plan.nb_iot_share)
    built = build_models(devices, options)
    for device_id, window in faults:
        built.by_id[device_id].faults.add(window)
    cut = plan.start
    while cut < plan.end:
        cut = min(cut + plan.batch, plan.end)
        yield [message for model in built.connected for message in model.poll(cut)]


def readings_of(messages: Iterable[Outgoing], kinds: dict[str, str], received_at: datetime,
                limits: Limits) -> tuple[list[Reading], list[EventRecord]]:
    """Decode messages exactly as ingest would; any rejection is a simulator bug and raises."""
    readings: list[Reading] = []
    events: list[EventRecord] = []
    for message in messages:
        document = parse_json(message.payload, limits)
        if isinstance(document, Rejection):
            raise ValueError(f"{message.device_id}: {document.detail}")
        pairs = ([(message.device_id, document)] if message.channel is not Channel.GATEWAY_TELEMETRY
                 else split_gateway(document)[0])
        for device_id, body in pairs:
            if message.channel is Channel.EVENT:
                decoded = decode_events(device_id, body, received_at, limits)
            else:
                decoded = decode_telemetry(device_id, body, kind_named(kinds[device_id]),
                                           received_at, limits)
            if decoded.rejections:
                raise ValueError(f"{device_id}: {decoded.rejections[0].detail}")
            readings.extend(decoded.readings)
            events.extend(decoded.events)
    return readings, events
