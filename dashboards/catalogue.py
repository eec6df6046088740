"""Every dashboard, listed once: the build command, push and the tests iterate this table."""

from __future__ import annotations

from collections.abc import Callable

from dashboards import alerts, barns, health, quality, water
from dashboards.board import BuiltDashboard
from dashboards.i18n import Language

Builder = Callable[[Language, str], BuiltDashboard]

DASHBOARDS: dict[str, Builder] = {
    water.UID: water.build,
    quality.UID: quality.build,
    barns.UID: barns.build,
    health.UID: health.build,
    alerts.UID: alerts.build,
}


def build_all(language: Language, datasource_uid: str) -> list[BuiltDashboard]:
    """Every dashboard in one language, on the datasource with this UID."""
    return [build(language, datasource_uid) for build in DASHBOARDS.values()]
