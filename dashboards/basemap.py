"""The maps' base layer: a self-hosted XYZ tile server when one is configured, else the
country outlines Grafana ships itself, so a map works on a network with no internet
(Grafana's own default fetches tiles from CARTO's servers)."""

from __future__ import annotations

import re
from typing import Any

# Served by Grafana itself, from its installation: no request leaves the network.
OFFLINE_OUTLINES = "public/maps/countries.geojson"
_XYZ = re.compile(r"(https?://|/)\S*")


def check_tiles_url(url: str) -> str:
    """An XYZ tile URL template: http(s):// (or a path on Grafana's origin) with {z}, {x}
    and {y}; ValueError says what is missing."""
    if not _XYZ.fullmatch(url):
        raise ValueError("must be an http(s):// URL (or a path on Grafana's origin)")
    missing = [part for part in ("{z}", "{x}", "{y}") if part not in url]
    if missing:
        raise ValueError(f"must hold {', '.join(missing)} (an XYZ template: .../{{z}}/{{x}}/{{y}}.png)")
    return url


def basemap_layer(tiles_url: str | None, attribution: str = "") -> dict[str, Any]:
    """Grafana's base-layer options: the XYZ tiles, or the offline outlines."""
    if tiles_url:
        return {"type": "xyz", "name": "Basemap",
                "config": {"url": tiles_url, "attribution": attribution}}
    return {"type": "geojson", "name": "Basemap",
            "config": {"src": OFFLINE_OUTLINES, "rules": [],
                       "style": {"color": {"fixed": "#8c8c8c"}, "opacity": 0.25,
                                 "lineWidth": 1}}}


def set_basemaps(model: dict[str, Any], layer: dict[str, Any]) -> int:
    """Give every map panel of a dashboard model (rows included) this base layer; how many."""
    count = 0
    for panel in model.get("panels", []):
        if panel.get("type") == "geomap":
            panel.setdefault("options", {})["basemap"] = dict(layer)
            count += 1
        count += set_basemaps(panel, layer) if "panels" in panel else 0
    return count
