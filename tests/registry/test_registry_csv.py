"""The registry CSV format: every fault found with its line, good files read as written."""

from __future__ import annotations

from datetime import date

import pytest

from devices.registry_csv import (
    CsvFileError,
    DeviceRow,
    format_registry_csv,
    parse_registry_csv,
    parse_tags,
    row_from_cells,
)

HEADER = "device_id,kind,village,township,latitude,longitude,installed_on,gateway_id,tags\n"


def test_five_different_faults_are_all_reported_with_their_lines() -> None:
    text = (HEADER
            + "gw-1,gateway,东村,城关镇,,,,,\n"  # line 2: good
            + "wm 1,water_meter,东村,,,,,,\n"  # line 3: bad id
            + "wm-2,toaster,东村,,,,,,\n"  # line 4: unknown kind
            + "wm-3,water_meter,东村,,91,,,,\n"  # line 5: latitude out of range
            + "wm-4,water_meter,东村,,,,2026-13-01,,\n"  # line 6: not a date
            + "wm-5,water_meter,东村,,,,,gw-9,\n"  # line 7: no such gateway
            + "wm-6,water_meter,西村,,,,,gw-1,a=1\n")  # line 8: good
    parsed = parse_registry_csv(text.encode())
    assert [(p.line, p.reason.split(":")[0]) for p in parsed.problems] == [
        (3, "device_id"), (4, "kind"), (5, "latitude"), (6, "installed_on"), (7, "gateway_id")]
    assert [row.device_id for row in parsed.rows] == ["gw-1", "wm-6"]


@pytest.mark.parametrize(("cells", "reason"), [
    ("x,water_meter,东村", "device_id: 'x' is not 3 to 64 characters"),
    ("svc-ingest,water_meter,东村", "reserved for services"),
    ("wm-1,water_meter,", "village is empty"),
    ("wm-1,,东村", "kind is empty"),
    ("wm-1,water_meter,东村,,abc", "latitude: 'abc' is not a number"),
    ("wm-1,water_meter,东村,,nan", "latitude: nan is outside"),
    ("wm-1,water_meter,东村,,,181", "longitude: 181 is outside"),
    ("wm-1,water_meter,东村,,,,2026/01/05", "installed_on: '2026/01/05' is not a date"),
    ("wm-1,water_meter,东村,,,,,wm-1", "gateway_id: 'wm-1' is not a gateway"),
    ("gw-1,gateway,东村,,,,,gw-2", "a gateway is not reached through another gateway"),
    ("wm-1,water_meter,东村,,,,,,novalue", "tags: tag 'novalue' is not key=value"),
    ("wm-1,water_meter,东村,,,,,,a=1;a=2", "tags: tag 'a' is given twice"),
    ('wm-1,water_meter,东村,,,,,,"{""a"": 1}"', "JSON tags must be an object of strings"),
    ("wm-1,water_meter,东村,\x07", "township: contains a control character"),
    ("wm-1,water_meter," + "村" * 201, "village: longer than 200"),
])
def test_each_fault_has_a_precise_reason(cells: str, reason: str) -> None:
    padded = cells + "," * (HEADER.count(",") - cells.count(","))
    parsed = parse_registry_csv((HEADER + padded + "\n").encode(), registry_gateways={"gw-2"})
    assert parsed.rows == []
    assert len(parsed.problems) == 1
    assert parsed.problems[0].line == 2
    assert reason in parsed.problems[0].reason


def test_a_row_with_the_wrong_number_of_fields() -> None:
    parsed = parse_registry_csv((HEADER + "wm-1,water_meter\n").encode())
    assert [str(p) for p in parsed.problems] == ["line 2: has 2 fields, the header has 9"]


def test_duplicate_device_in_one_file_names_the_first_line() -> None:
    parsed = parse_registry_csv(b"device_id,kind,village\nwm-1,camera,a\nwm-1,camera,b\n")
    assert str(parsed.problems[0]) == "line 3 (wm-1): device_id also on line 2"


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the file is empty"),
    (b"device_id,kind\nwm-1,camera\n", "required column 'village' is missing"),
    (b"device_id,kind,village,colour\n", "unknown column 'colour'"),
    (b"device_id,kind,village,kind\n", "column 'kind' appears twice"),
    (b"device_id,kind,village\nwm-1,camera,ok\nwm-2,camera,\xb6\xab\xb4\xe5\n",
     "line 3: not UTF-8"),
])
def test_file_level_faults(data: bytes, message: str) -> None:
    with pytest.raises(CsvFileError, match=message):
        parse_registry_csv(data)


def test_bom_chinese_quoted_multiline_and_blank_lines() -> None:
    text = ("\ufeffDevice_ID,kind,village,name,tags\r\n"
            'wm-1,water_meter,东村,"张三家水表, 北屋",户主=张三;阀门=有\r\n'
            "\r\n"
            "wm-2,water_meter,西村,,\r\n")
    parsed = parse_registry_csv(text.encode("utf-8"))
    assert parsed.problems == []
    assert parsed.columns == ("device_id", "kind", "village", "name", "tags")
    assert parsed.rows[0] == DeviceRow("wm-1", "water_meter", "东村", name="张三家水表, 北屋",
                                       tags={"户主": "张三", "阀门": "有"})
    assert parsed.rows[1].name is None


def test_line_numbers_count_physical_lines_after_a_multiline_cell() -> None:
    text = 'device_id,kind,village,name\nwm-1,camera,a,"one\ntwo\nthree"\nx,camera,a,\n'
    problems = parse_registry_csv(text.encode()).problems
    assert [(p.line, p.reason) for p in problems] == [
        (2, "name: contains a control character"),
        (5, "device_id: 'x' is not 3 to 64 characters of [A-Za-z0-9_.-]")]


def test_gateway_in_the_registry_and_a_registry_gateway_turned_meter() -> None:
    text = "device_id,kind,village,gateway_id\nwm-1,water_meter,a,gw-old\ngw-old,water_meter,a,\n"
    parsed = parse_registry_csv(text.encode(), registry_gateways={"gw-old"})
    assert [p.reason for p in parsed.problems] == [
        "gateway_id: 'gw-old' is not a gateway in this file or the registry"]
    ok = parse_registry_csv(b"device_id,kind,village,gateway_id\nwm-1,water_meter,a,gw-old\n",
                            registry_gateways={"gw-old"})
    assert ok.rows[0].gateway_id == "gw-old"


@pytest.mark.parametrize(("cell", "tags"), [
    ("a=1; b = two ;", {"a": "1", "b": "two"}),
    ('{"k": "v;w=x"}', {"k": "v;w=x"}),
    ("", {}),
])
def test_tags(cell: str, tags: dict[str, str]) -> None:
    assert parse_tags(cell) == tags


def test_export_reads_back_to_the_same_rows() -> None:
    rows = [
        DeviceRow("gw-1", "gateway", "东村", township="城关镇", latitude=34.123456789,
                  longitude=-113.5, installed_on=date(2026, 1, 5)),
        DeviceRow("wm-1", "water_meter", "东村", name='名字, "引号"', grid="一组", site="泵站",
                  gateway_id="gw-1", tags={"a": "x;y", "b": "2"}),
        DeviceRow("wm-2", "water_meter", "西村", tags={"户主": "李四"}),
        DeviceRow("wm-3", "water_meter", "西村", tags={"{note": "}"}),
    ]
    parsed = parse_registry_csv(format_registry_csv(rows).encode())
    assert parsed.problems == []
    assert parsed.rows == rows


def test_row_from_cells_lists_every_fault() -> None:
    with pytest.raises(ValueError, match="kind: unknown kind 'x'.*latitude: '9x' is not"):
        row_from_cells({"device_id": "wm-1", "kind": "x", "village": "a", "latitude": "9x"},
                       set())
    with pytest.raises(ValueError, match="village is required"):
        row_from_cells({"device_id": "wm-1", "kind": "camera"}, set())
    assert row_from_cells({"device_id": "wm-1", "kind": "camera", "village": "a",
                           "gateway_id": "gw-1"}, {"gw-1"}).gateway_id == "gw-1"
