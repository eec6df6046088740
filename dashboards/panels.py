"""Panel shapes the dashboards reuse, built with grafana-foundation-sdk. Pure."""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, common, stat, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as model

from dashboards.board import column_matcher


def series(
    unit: str,
    thresholds: Builder[model.ThresholdsConfig] | None = None,
    bars: bool = False,
) -> timeseries.Panel:
    """A time series; thresholds, when given, are drawn as dashed lines and areas."""
    panel = (
        timeseries.Panel()
        .unit(unit)
        .legend(
            common.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["min", "max", "mean"])
        )
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
        .span_nulls(False)
    )
    if bars:
        panel = panel.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80).stacking(
            common.StackingConfig().mode(cm.StackingMode.NORMAL)
        )
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED_AND_AREA)
        )
    return panel


def single(unit: str, thresholds: Builder[model.ThresholdsConfig] | None = None) -> stat.Panel:
    """One big number, coloured by its thresholds."""
    panel = (
        stat.Panel()
        .unit(unit)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if thresholds is not None:
        panel = panel.thresholds(thresholds)
    return panel


def listing(
    coloured: str | None = None,
    thresholds: Builder[model.ThresholdsConfig] | None = None,
) -> table.Panel:
    """A table (units are in the column names); the `coloured` column's cells take the colour of their threshold."""
    panel = table.Panel().show_header(True).filterable(True)
    if coloured is not None and thresholds is not None:
        panel = panel.with_override(
            column_matcher(coloured),
            [
                model.DynamicConfigValue(id_val="thresholds", value=thresholds.build()),
                model.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                ),
            ],
        )
    return panel


def bars(x_field: str, unit: str = "short") -> barchart.Panel:
    """Categories along x (the field named `x_field`, as displayed), one stacked bar per number."""
    return (
        barchart.Panel()
        .x_field(x_field)
        .unit(unit)
        .stacking(cm.StackingMode.NORMAL)
        .show_value(cm.VisibilityMode.AUTO)
        .legend(
            common.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.NONE))
    )
