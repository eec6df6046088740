"""Device health: online and offline by kind and place, last seen, dead letters, firmware,
and the county's one map of every device coloured by status."""

# ruff: noqa: S608 - panel SQL is composed from constants in this code; the only
# runtime values ($township, $__timeFilter...) are filled in later by Grafana itself.

from __future__ import annotations

from grafana_foundation_sdk.builders import common, geomap
from grafana_foundation_sdk.builders.dashboard import FieldColor
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import geomap as gm

from dashboards.board import BASE, Board, BuiltDashboard, place_filter, steps
from dashboards.i18n import COLUMN_LABELS, Language, Text
from dashboards.panels import bars, listing, series, single
from dashboards.query import Query

UID = "village-health"

STATUS_JOIN = """FROM device_status s
JOIN devices d ON d.device_id = s.device_id
JOIN device_kinds k ON k.kind = s.kind"""


def one_map(board: Board) -> geomap.Panel:
    """Every device at its place, green online and red offline, fitted to the data."""
    return (
        geomap.Panel()
        .view(geomap.MapViewConfig().id("fit").lat(0).lon(0).zoom(10).all_layers(True))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True).show_scale(True))
        # The base layer is set for every map by dashboards.catalogue.build_all.
        .layers([
            common.MapLayerOptions()
            .type("markers")
            .name(board.t(Text("设备", "Devices")))
            .location(
                common.FrameGeometrySource()
                .mode(cm.FrameGeometrySourceMode.COORDS)
                .latitude("latitude")
                .longitude("longitude")
            )
            .config({
                "showLegend": True,
                "style": {
                    "color": {"field": "online", "fixed": "dark-green"},
                    "size": {"fixed": 6},
                    "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                    "opacity": 0.8,
                },
            })
            .tooltip(True)
        ])
        .tooltip(geomap.TooltipOptions().mode(gm.TooltipMode.DETAILS))
        .color_scheme(FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .thresholds(steps((BASE, "red"), (1, "green")))
        .mappings([
            model.ValueMap(options={
                "0": model.ValueMappingResult(text=board.t(Text("离线", "offline")), color="red"),
                "1": model.ValueMappingResult(text=board.t(Text("在线", "online")), color="green"),
            })
        ])
    )


def build(language: Language, datasource_uid: str) -> BuiltDashboard:
    """The device-health dashboard."""
    board = Board(UID, Text("设备健康与一张图", "Device health and the county map"), language,
                  datasource_uid, ("health", "map"))
    board.add(
        single("none"),
        Text("在线 / 离线 / 总数", "Online / offline / total"),
        Query(
            f"""SELECT count(*) FILTER (WHERE s.online) AS online,
       count(*) FILTER (WHERE NOT s.online) AS offline, count(*) AS total
{STATUS_JOIN}
WHERE s.lifecycle = 'active' AND {place_filter()}""",
            ("online", "offline", "total"),
        ),
        width=8,
        height=6,
    )
    board.add(
        bars(board.t(COLUMN_LABELS["kind"])),
        Text("各类设备在线情况", "Online and offline by kind"),
        Query(
            f"""SELECT k.{board.kind_label} AS kind,
       count(*) FILTER (WHERE s.online) AS online, count(*) FILTER (WHERE NOT s.online) AS offline
{STATUS_JOIN}
WHERE s.lifecycle = 'active' AND {place_filter()}
GROUP BY 1
ORDER BY 1""",
            ("kind", "online", "offline"),
        ),
        width=16,
        height=6,
    )
    board.add(
        one_map(board),
        Text("一张图：全部设备", "One map: every device"),
        Query(
            f"""SELECT s.device_id, coalesce(d.name, d.device_id) AS name, k.{board.kind_label} AS kind,
       s.village, d.latitude, d.longitude, CASE WHEN s.online THEN 1 ELSE 0 END AS online,
       s.last_seen
{STATUS_JOIN}
WHERE s.lifecycle = 'active' AND d.latitude IS NOT NULL AND d.longitude IS NOT NULL
  AND {place_filter()}""",
            ("device_id", "name", "kind", "village", "latitude", "longitude", "online", "last_seen"),
        ),
        width=24,
        height=14,
        keep_names=("latitude", "longitude", "online"),
    )
    board.add(
        listing("offline", steps((BASE, "green"), (1, "red"))),
        Text("各村设备在线情况", "Online and offline by village"),
        Query(
            f"""SELECT s.township, s.village, count(*) FILTER (WHERE s.online) AS online,
       count(*) FILTER (WHERE NOT s.online) AS offline, count(*) AS total
{STATUS_JOIN}
WHERE s.lifecycle = 'active' AND {place_filter()}
GROUP BY 1, 2
ORDER BY 4 DESC, 1, 2""",
            ("township", "village", "online", "offline", "total"),
        ),
    )
    board.add(
        listing(),
        Text("最久未上报的设备", "Longest silent devices"),
        Query(
            f"""SELECT s.device_id, k.{board.kind_label} AS kind, s.village, s.last_seen,
       s.reported_state, s.online
{STATUS_JOIN}
WHERE s.lifecycle = 'active' AND {place_filter()}
ORDER BY s.last_seen NULLS FIRST
LIMIT 200""",
            ("device_id", "kind", "village", "last_seen", "reported_state", "online"),
        ),
    )
    board.add(
        series("short", bars=True),
        Text("死信 (被拒消息) 按原因", "Dead letters (refused messages) by reason"),
        Query(
            f"""SELECT $__timeGroupAlias(dl.received_at, $__interval), dl.reason AS metric,
       count(*) AS dead_letters
FROM dead_letters dl
LEFT JOIN devices d ON d.device_id = dl.device_id
WHERE $__timeFilter(dl.received_at) AND {place_filter()}
GROUP BY 1, 2
ORDER BY 1""",
            ("time", "metric", "dead_letters"),
            "time_series",
        ),
        description=Text("选择了地点时，不明设备的死信不计入。",
                         "With a place chosen, dead letters from unknown devices are left out."),
    )
    board.add(
        listing(),
        Text("固件版本", "Firmware versions"),
        Query(
            f"""SELECT k.{board.kind_label} AS kind, coalesce(s.firmware, '-') AS firmware,
       count(*) AS devices
{STATUS_JOIN}
WHERE s.lifecycle = 'active' AND {place_filter()}
GROUP BY 1, 2
ORDER BY 1, 3 DESC""",
            ("kind", "firmware", "devices"),
        ),
    )
    return board.build()
