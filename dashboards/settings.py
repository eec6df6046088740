"""Settings for pushing dashboards to Grafana (`VILLAGE_GRAFANA__*`)."""

from pydantic import BaseModel, ConfigDict


class GrafanaSettings(BaseModel):
    """Where Grafana is and how to reach it."""

    model_config = ConfigDict(extra="forbid")
