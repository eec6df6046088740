"""Simulated devices through the real ingest worker: everything stored, nothing dead-lettered,
and hostile messages dead-lettered with reasons while the rest keeps flowing."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from ground.local import MosquittoServer
from ground.settings import parse_mqtt_url
from simulators.build import DEFAULT_INTERVALS_S
from simulators.fleet import SimulatedFleet
from simulators.history import Backfill, history
from simulators.hostile import HostileGenerator
from simulators.population import PopulationSpec, generate_population
from simulators.store import register
from tests.ingest.conftest import ingest_settings, running_worker, scalar, wait_until

SPEC = PopulationSpec(townships=1, villages=2, meters=6, probes=1, cameras=2, barns=1,
                      speakers=2, gateways=True)
FAST = dict.fromkeys(DEFAULT_INTERVALS_S, 0.5)  # every simulated kind


def test_every_simulated_device_is_stored_and_nothing_is_dead_lettered(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    devices = generate_population(SPEC, seed=5)
    with psycopg.connect(database_url) as conn:
        register(conn, devices)
    settings = ingest_settings(database_url, mosquitto.url, topic_prefix)
    with running_worker(settings), SimulatedFleet(
            parse_mqtt_url(mosquitto.url), topic_prefix, devices, seed=5, intervals_s=FAST,
            stagger=False, nb_iot_share=0) as fleet:
        wait_until(lambda: scalar(database_url, "SELECT count(DISTINCT device_id) FROM readings")
                   == len(devices), what="readings from every device")
        # A few hours of history through the same connections, as store-and-forward arrays.
        start = fleet.clock.now() - timedelta(hours=3)
        for batch in history(devices, Backfill(start, 0.1, seed=5, nb_iot_share=0)):
            fleet.publish(batch)
        fleet.flush()
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings WHERE ts < %s",
                                  start + timedelta(hours=2)) > 100, what="the back-filled history")
    assert scalar(database_url, "SELECT count(*) FROM dead_letters") == 0
    assert scalar(database_url, "SELECT count(*) FROM readings WHERE device_id LIKE 'gw-%%'") > 0


def test_hostile_messages_are_dead_lettered_and_the_rest_still_flows(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    devices = generate_population(PopulationSpec(townships=1, villages=1, meters=0, probes=2,
                                                 cameras=0, barns=0, speakers=0), seed=6)
    with psycopg.connect(database_url) as conn:
        register(conn, devices)
    hostile = HostileGenerator(topic_prefix, [(d.device_id, d.kind) for d in devices], seed=6)
    settings = ingest_settings(database_url, mosquitto.url, topic_prefix)
    with running_worker(settings), SimulatedFleet(
            parse_mqtt_url(mosquitto.url), topic_prefix, devices, intervals_s=FAST,
            stagger=False, hostile=hostile, hostile_rate=30) as fleet:
        wait_until(lambda: scalar(database_url, "SELECT count(DISTINCT reason) FROM dead_letters")
                   >= 8, what="dead letters of many kinds")
        before = scalar(database_url, "SELECT count(*) FROM readings")
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings") > before + 4,
                   what="good readings still stored")
        assert sum(fleet.hostile_sent.values()) > 8
