"""A county's devices, generated deterministically from a seed (pure), and the CSV of them."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from simulators.device import CSV_COLUMNS, SimDevice

# Syllables for place names that look like a North China county's.
_SYLLABLES = ("安", "白", "柏", "北", "大", "东", "丰", "福", "高", "官", "和", "河", "后", "华",
              "黄", "家", "金", "康", "李", "林", "刘", "柳", "马", "南", "平", "前", "青", "庆",
              "三", "沙", "山", "上", "石", "双", "水", "太", "田", "王", "西", "下", "小", "新",
              "兴", "杨", "永", "玉", "张", "赵", "庄", "中")
_COUNTY_CENTRE = (36.60, 116.20)  # latitude, longitude


# What a village gateway carries by default: LoRa / wM-Bus meters, probes, barn sensors.
GATEWAY_CARRIES = frozenset(("water_meter", "water_quality", "barn"))


@dataclass(frozen=True)
class PopulationSpec:
    """How many of each kind, over how many townships and villages."""

    townships: int = 3
    villages: int = 40
    meters: int = 15_000
    probes: int = 20
    cameras: int = 3_000
    barns: int = 30
    speakers: int = 400
    gateways: bool = False  # one gateway per village carrying its devices of `gateway_kinds`
    gateway_kinds: frozenset[str] = GATEWAY_CARRIES

    def __post_init__(self) -> None:
        if self.townships < 1 or self.villages < self.townships:
            raise ValueError("need at least one township and at least one village per township")
        counts = (self.meters, self.probes, self.cameras, self.barns, self.speakers)
        if min(counts) < 0:
            raise ValueError("device counts cannot be negative")


@dataclass(frozen=True)
class _Place:
    township: str
    village: str
    latitude: float
    longitude: float


def _names(rng: random.Random, count: int, suffix: str, taken: set[str]) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = "".join(rng.sample(_SYLLABLES, 2)) + suffix
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def _places(spec: PopulationSpec, rng: random.Random) -> list[_Place]:
    taken: set[str] = set()
    townships = _names(rng, spec.townships, "镇", taken)
    centres = [(_COUNTY_CENTRE[0] + rng.uniform(-0.2, 0.2),
                _COUNTY_CENTRE[1] + rng.uniform(-0.25, 0.25)) for _ in townships]
    places = []
    for index, village in enumerate(_names(rng, spec.villages, "村", taken)):
        town = index % spec.townships
        latitude, longitude = centres[town]
        places.append(_Place(townships[town], village, round(latitude + rng.uniform(-0.06, 0.06), 5),
                             round(longitude + rng.uniform(-0.06, 0.06), 5)))
    return places


# Kind, id prefix, count field, and the site a device of the kind stands at (if any).
_KINDS = (
    ("water_meter", "wm", "meters", None),
    ("water_quality", "wq", "probes", "水站"),
    ("camera", "cam", "cameras", None),
    ("barn", "barn", "barns", "牧场"),
    ("speaker", "spk", "speakers", None),
)
def generate_population(spec: PopulationSpec, seed: int = 0) -> list[SimDevice]:
    """Every device of a county, the same for the same spec and seed."""
    rng = random.Random(f"population/{seed}")
    places = _places(spec, rng)
    gateways = {place.village: f"gw-{index + 1:03d}" for index, place in enumerate(places)}
    devices: list[SimDevice] = []
    if spec.gateways:
        devices.extend(SimDevice(gateways[p.village], "gateway", p.village, p.township,
                                 f"{p.village}网关", site=f"{p.village}村委会",
                                 latitude=p.latitude, longitude=p.longitude) for p in places)
    for kind, prefix, field_name, site in _KINDS:
        count = getattr(spec, field_name)
        width = max(4, len(str(count)))
        for number in range(1, count + 1):
            # Every village gets its share first, then the rest land anywhere.
            place = places[number - 1] if number <= len(places) else rng.choice(places)
            carried = spec.gateways and kind in spec.gateway_kinds
            devices.append(SimDevice(
                device_id=f"{prefix}-{number:0{width}d}",
                kind=kind,
                village=place.village,
                township=place.township,
                name=f"{place.village}{site or ''}{number}号",
                grid=f"第{rng.randint(1, 8)}组",
                site=f"{place.village}{site}" if site else None,
                latitude=round(place.latitude + rng.uniform(-0.01, 0.01), 6),
                longitude=round(place.longitude + rng.uniform(-0.01, 0.01), 6),
                gateway_id=gateways[place.village] if carried else None,
            ))
    return devices


def write_csv(devices: Iterable[SimDevice], out: TextIO) -> int:
    """Write devices in the registry's import format; return how many."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for device in devices:
        writer.writerow({k: "" if v is None else v for k, v in device.row().items()})
        count += 1
    return count


def summary(devices: Sequence[SimDevice]) -> dict[str, int]:
    """How many devices of each kind."""
    counts: dict[str, int] = {}
    for device in devices:
        counts[device.kind] = counts.get(device.kind, 0) + 1
    return counts
