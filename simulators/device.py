"""A simulated device's registry row: who it is and where (the CSV/registry import format)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

CSV_COLUMNS = ("device_id", "kind", "name", "township", "village", "grid", "site",
               "latitude", "longitude", "gateway_id")


@dataclass(frozen=True, slots=True)
class SimDevice:
    """One device of a simulated population."""

    device_id: str
    kind: str
    village: str = "测试村"
    township: str | None = None
    name: str | None = None
    grid: str | None = None
    site: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    gateway_id: str | None = None

    def row(self) -> dict[str, object]:
        """The device as a registry/CSV row."""
        return asdict(self)


def numbered(kind: str, count: int, id_prefix: str, village: str = "测试村",
             township: str | None = None) -> list[SimDevice]:
    """`count` devices of one kind with ids `{id_prefix}-0001`... (handy in tests)."""
    return [SimDevice(f"{id_prefix}-{n:04d}", kind, village=village, township=township)
            for n in range(1, count + 1)]
