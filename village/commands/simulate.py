"""The `village simulate` command: a county's devices without hardware."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from devices.contract import DEFAULT_ACCEPTED_LATENESS_DAYS
from simulators import store
from simulators.clock import LOCAL_TZ, SystemClock
from simulators.device import SimDevice
from simulators.faults import FaultWindow
from simulators.history import Backfill
from simulators.population import PopulationSpec, generate_population, summary, write_csv
from simulators.run import RunOptions, run_backfill, run_realtime
from simulators.scenario import ScenarioError, parse_scenario, resolve
from village.commands.output import settings_or_exit
from village.processes import stop_on_signals
from village.settings import Settings

console = Console(stderr=True, soft_wrap=True, highlight=False)

# Above this many devices a generated population rides on gateways (one per village).
CONNECTIONS_LIMIT = 5000


def simulate(
    townships: Annotated[int, typer.Option(min=1, help="generated: townships")] = 3,
    villages: Annotated[int, typer.Option(min=1, help="generated: villages")] = 40,
    meters: Annotated[int, typer.Option(min=0, help="generated: water meters")] = 15_000,
    probes: Annotated[int, typer.Option(min=0, help="generated: water-quality probes")] = 20,
    cameras: Annotated[int, typer.Option(min=0, help="generated: cameras")] = 3_000,
    barns: Annotated[int, typer.Option(min=0, help="generated: barns")] = 30,
    speakers: Annotated[int, typer.Option(min=0, help="generated: loudspeakers")] = 400,
    from_registry: Annotated[bool, typer.Option(
        "--from-registry", help="simulate the registry's active devices instead")] = False,
    seed: Annotated[int, typer.Option(
        help="the same seed gives the same population and data")] = 0,
    multiplex: Annotated[bool | None, typer.Option(
        "--multiplex/--no-multiplex",
        help=f"meters, probes and barns ride on village gateways (default: above "
             f"{CONNECTIONS_LIMIT} generated devices)")] = None,
    register: Annotated[bool, typer.Option(
        "--register", help="write the population to the registry")] = False,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="write the population to this CSV")] = None,
    secrets: Annotated[Path | None, typer.Option(
        "--secrets", help="device secrets: with --register, issue and add them to this file"
                          " (mode 0600); when running, log devices in with them")] = None,
    scenario: Annotated[Path | None, typer.Option(
        "--scenario", help="a YAML file of faults")] = None,
    duration: Annotated[float | None, typer.Option(
        min=0, help="run in real time for this many seconds (default: until Ctrl-C)")] = None,
    backfill: Annotated[float | None, typer.Option(
        min=0.01, max=DEFAULT_ACCEPTED_LATENESS_DAYS,  # ingest refuses older readings by default
        help="publish this many days of history, then stop")] = None,
    backfill_end: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%dT%H:%M:%S%z"],
        help="the back-fill ends here (default: the last local midnight)")] = None,
    hostile: Annotated[float, typer.Option(
        min=0, help="malformed messages per second to mix in")] = 0.0,
    nb_iot_share: Annotated[float, typer.Option(
        min=0, max=1, help="share of meters on NB-IoT")] = 0.3,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="live rates")] = True,
) -> None:
    """Simulate devices: generated or from the registry, in real time or as back-filled history."""

    settings = settings_or_exit()
    if from_registry:
        devices = _from_registry(settings, multiplex)
    else:
        total = meters + probes + cameras + barns + speakers
        spec = _spec_or_exit(townships, villages, meters, probes, cameras, barns, speakers,
                             multiplex if multiplex is not None else total > CONNECTIONS_LIMIT)
        devices = generate_population(spec, seed)
    kinds = ", ".join(f"{count} {kind}" for kind, count in summary(devices).items())
    console.print(f"population: {len(devices)} devices ({kinds}), seed {seed}")
    if csv_file is not None:
        _write_csv(devices, csv_file)
    if register:
        _register(settings, devices, secrets)
    if (csv_file is not None or register) and duration is None and backfill is None:
        return
    passwords = _passwords(secrets) if secrets is not None else {}
    _run(settings, devices, seed, scenario, duration, backfill, backfill_end, hostile,
         nb_iot_share, progress, passwords)


def _spec_or_exit(townships: int, villages: int, meters: int, probes: int, cameras: int,
                  barns: int, speakers: int, gateways: bool) -> PopulationSpec:

    try:
        return PopulationSpec(townships, villages, meters, probes, cameras, barns, speakers,
                              gateways)
    except ValueError as exc:
        console.print(f"[red]population:[/red] {exc}")
        raise typer.Exit(2) from None


def _from_registry(settings: Settings, multiplex: bool | None) -> list[SimDevice]:


    with psycopg.connect(settings.database_url) as conn:
        devices = store.load_population(conn)
    if not devices:
        console.print("[red]the registry has no active device[/red]")
        raise typer.Exit(2)
    if multiplex and not any(d.gateway_id for d in devices):
        console.print("[red]--multiplex: no registered device is assigned to a gateway[/red]")
        raise typer.Exit(2)
    return devices


def _write_csv(devices: list[SimDevice], path: Path) -> None:

    with path.open("w", encoding="utf-8", newline="") as out:
        count = write_csv(devices, out)
    console.print(f"wrote {count} devices to {path}")


def _register(settings: Settings, devices: list[SimDevice], secrets: Path | None) -> None:


    with psycopg.connect(settings.database_url) as conn:
        done = store.register(conn, devices, issue_secrets=secrets is not None)
    console.print(f"registry: {done.created} new, {len(devices) - done.created} already known")
    if secrets is not None:
        count = store.append_secrets(secrets, done.secrets)
        console.print(f"{count} new device secrets added to {secrets} (regenerate the broker's"
                      " password file: village broker-config)")


def _passwords(path: Path) -> dict[str, str]:

    try:
        return store.read_secrets(path)
    except OSError as exc:
        console.print(f"[red]--secrets {path}:[/red] {exc.strerror}")
        raise typer.Exit(2) from None


def _run(settings: Settings, devices: list[SimDevice], seed: int, scenario: Path | None,
         duration: float | None, backfill: float | None, backfill_end: datetime | None,
         hostile: float, nb_iot_share: float, progress: bool,
         passwords: dict[str, str]) -> None:

    if hostile and backfill is not None:
        console.print("[red]--hostile runs in real time only, not with --backfill[/red]")
        raise typer.Exit(2)
    if backfill is not None:
        end = backfill_end or SystemClock().now().replace(hour=0, minute=0, second=0,
                                                          microsecond=0)
        start = end.astimezone(LOCAL_TZ) - timedelta(days=backfill)
    else:
        start = SystemClock().now()
    faults: list[tuple[str, FaultWindow]] = []
    if scenario is not None:
        try:
            faults = resolve(parse_scenario(scenario.read_text(encoding="utf-8")), devices,
                             start, seed)
        except (OSError, ScenarioError) as exc:
            console.print(f"[red]scenario {scenario}:[/red] {exc}")
            raise typer.Exit(2) from None
        console.print(f"scenario: {len(faults)} fault windows")
    options = RunOptions(settings.mqtt, settings.topic_prefix, seed, faults, hostile,
                         nb_iot_share=nb_iot_share, show_progress=progress, passwords=passwords)
    stop = threading.Event()
    try:
        _start(devices, options, backfill, start, duration, stop)
    except TimeoutError as exc:
        console.print(f"[red]broker {settings.mqtt!r}:[/red] {exc}")
        raise typer.Exit(1) from None


def _start(devices: list[SimDevice], options: RunOptions, backfill: float | None,
           start: datetime, duration: float | None, stop: threading.Event) -> None:

    with stop_on_signals(stop):
        if backfill is not None:
            plan = Backfill(start, backfill, options.seed, nb_iot_share=options.nb_iot_share)
            report = run_backfill(devices, plan, options, console, stop)
            console.print(f"back-fill {plan.start.isoformat()} to {plan.end.isoformat()}:"
                          f" {report.messages} messages, {report.acknowledged} acknowledged,"
                          f" {report.seconds:.1f} s")
        else:
            counters = run_realtime(devices, options, console, duration, stop)
            console.print(f"stopped: {counters.published} published, {counters.acknowledged}"
                          f" acknowledged, {counters.commands} commands received")


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the `village` program."""
    app.command()(simulate)
