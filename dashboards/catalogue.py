"""Every dashboard, listed once: the build command, push and the tests iterate this table."""

from __future__ import annotations

from collections.abc import Callable

from dashboards import alerts, barns, health, quality, water
from dashboards.basemap import basemap_layer, set_basemaps
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


def build_all(language: Language, datasource_uid: str, tiles_url: str | None = None,
              tiles_attribution: str = "") -> list[BuiltDashboard]:
    """Every dashboard in one language, on the datasource with this UID; maps on the XYZ
    tiles given, or on an outline that needs no internet."""
    built = [build(language, datasource_uid) for build in DASHBOARDS.values()]
    layer = basemap_layer(tiles_url, tiles_attribution)
    for dashboard in built:
        set_basemaps(dashboard.model, layer)
    return built
