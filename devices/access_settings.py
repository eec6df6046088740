"""Settings of the access daemon (`VILLAGE_ACCESS__*`)."""

from pydantic import BaseModel, ConfigDict, Field


class AccessSettings(BaseModel):
    """How the access daemon talks to the broker (`VILLAGE_ACCESS__*`)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field("village-access", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    batch: int = Field(200, ge=1, le=10_000, description="changes per control message, at most")
    message_target_s: float = Field(
        1.0, gt=0, le=60, description="fewer changes per message when the broker takes longer")
    reply_timeout_s: float = Field(120, gt=0, description="wait this long for the broker's answer")
    reconcile_interval_s: float = Field(300, gt=0, description="compare with the broker this often")
