"""Settings of the broadcast service (`VILLAGE_BROADCAST__*`)."""

from pydantic import BaseModel, ConfigDict


class BroadcastSettings(BaseModel):
    """How broadcasts are delivered, retried and scheduled."""

    model_config = ConfigDict(extra="forbid")
