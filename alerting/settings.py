"""Settings of the alerting service (`VILLAGE_ALERTING__*`)."""

from pydantic import BaseModel, ConfigDict


class AlertingSettings(BaseModel):
    """How alerting loads rules, evaluates and notifies."""

    model_config = ConfigDict(extra="forbid")
