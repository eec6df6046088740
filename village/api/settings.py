"""Settings of the HTTP API (`VILLAGE_API__*`)."""

from pydantic import BaseModel, ConfigDict


class ApiSettings(BaseModel):
    """Where the API listens and how it signs links."""

    model_config = ConfigDict(extra="forbid")
