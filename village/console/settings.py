"""Settings of the operator console (`VILLAGE_CONSOLE__*`)."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ConsoleSettings(BaseModel):
    """Sign-in, sessions and the map of the console served by the API process."""

    model_config = ConfigDict(extra="forbid")

    session_hours: float = Field(12, gt=0, le=24 * 30, description="a session lasts this long")
    max_failures: int = Field(
        5, ge=1, le=100, description="wrong passwords in a row before the account is locked")
    lock_minutes: float = Field(15, gt=0, le=24 * 60, description="how long a lock lasts")
    secure_cookie: bool = Field(
        True, description="mark the session cookie Secure (browsers keep it on https and localhost)")
    tile_url: str | None = Field(
        None, max_length=500,
        description="map tiles this deployment serves itself, e.g. /tiles/{z}/{x}/{y}.png;"
                    " without it the map is a plain background with the place hierarchy")
    public_url: str | None = Field(
        None, max_length=500, pattern=r"^https?://[^/]+$",
        description="the address speakers reach this server at, for uploaded audio"
                    " (default: the address the operator's browser used)")
    timezone: str = Field("Asia/Shanghai", max_length=64,
                          description="the zone pages show times in and read typed times in")
    poll_seconds: float = Field(5, ge=1, le=300, description="how often open pages refresh")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The zone pages show times in."""
        return ZoneInfo(self.timezone)
