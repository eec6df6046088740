"""`village dashboards build|push|check`: Grafana dashboards as code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from dashboards.catalogue import build_all
from dashboards.check import check_queries
from dashboards.i18n import Language
from dashboards.provisioning import datasource_model, write_build
from dashboards.settings import GrafanaCredentialsError
from village.commands.output import fail, out, settings_or_exit

dashboards_app = typer.Typer(
    help="Grafana dashboards built from code: write provisioning files, push, check queries.",
    no_args_is_help=True,
)

Lang = Annotated[
    Language | None,
    typer.Option("--lang", help="title language (default VILLAGE_GRAFANA__LANGUAGE, zh)"),
]



@dashboards_app.command("build")
def build(
    out_dir: Annotated[Path, typer.Option("--out", help="directory to write into")],
    lang: Lang = None,
    dashboards_path: Annotated[
        str, typer.Option(help="where Grafana will see DIR/dashboards (the provider's path)")
    ] = "/etc/grafana/village/dashboards",
) -> None:
    """Write every dashboard and Grafana's datasource and dashboard provisioning files."""

    settings = settings_or_exit()
    grafana = settings.grafana
    built = build_all(lang or grafana.language, grafana.datasource_uid)
    endpoint = grafana.datasource_endpoint(settings.database_url)
    written = write_build(out_dir, built, grafana, endpoint, dashboards_path)
    for path in written:
        out.print(str(path), highlight=False)


@dashboards_app.command("push")
def push(lang: Lang = None) -> None:
    """Create or update the folder, the datasource and the dashboards in Grafana."""
    from dashboards.push import PushError, connect  # start-up cost: grafana-client
    from dashboards.push import push as push_all  # start-up cost: grafana-client

    settings = settings_or_exit()
    grafana = settings.grafana
    try:
        credential = grafana.credential(settings.development)
    except GrafanaCredentialsError as exc:
        raise fail(str(exc), 2) from None
    endpoint = grafana.datasource_endpoint(settings.database_url)
    datasource = datasource_model(grafana, endpoint, endpoint.password)
    built = build_all(lang or grafana.language, grafana.datasource_uid)
    api = connect(grafana.url, credential, grafana.timeout_s)
    try:
        report = push_all(api, grafana.url, grafana.folder_uid, grafana.folder_title, datasource,
                          built)
    except PushError as exc:
        raise fail(str(exc)) from None
    out.print(f"Grafana {report.grafana_version}: folder {grafana.folder_uid} {report.folder}, "
              f"datasource {grafana.datasource_uid} {report.datasource}", highlight=False)
    for uid, action in report.dashboards.items():
        out.print(f"dashboard {uid} {action}", highlight=False)


@dashboards_app.command("check")
def check(
    days: Annotated[int, typer.Option(help="the time range to query, ending now")] = 7,
) -> None:
    """Run every panel's SQL against VILLAGE_DATABASE_URL as Grafana would (all places).

    `$__timeGroup` is expanded for TimescaleDB when VILLAGE_GRAFANA__TIMESCALEDB is set, as
    Grafana's datasource does.
    """


    settings = settings_or_exit()
    now = datetime.now(UTC)
    try:
        with psycopg.connect(settings.database_url, connect_timeout=10) as conn:
            results = check_queries(conn, build_all("en", settings.grafana.datasource_uid),
                                    now - timedelta(days=days), now,
                                    timescaledb=settings.grafana.timescaledb)
    except psycopg.OperationalError as exc:
        raise fail(f"cannot reach the database: {str(exc).splitlines()[0]}") from None
    failures = [r for r in results if r.error]
    for result in results:
        mark = "[red]FAIL[/red]" if result.error else "ok  "
        out.print(f"{mark} {result.dashboard} / {result.panel}: "
                  f"{result.error or f'{result.rows} rows'}", highlight=False)
    if failures:
        raise fail(f"{len(failures)} of {len(results)} queries failed")


def register(app: typer.Typer) -> None:
    """Add `village dashboards ...` to the `village` program."""
    app.add_typer(dashboards_app, name="dashboards")
