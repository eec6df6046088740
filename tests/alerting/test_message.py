"""Messages: what a cadre reads, in Chinese and in English (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from alerting.message import duration_text, render

from .helpers import alert_view

ZONE = ZoneInfo("Asia/Shanghai")
STARTED = datetime(2026, 7, 1, 2, 5, tzinfo=UTC)  # 10:05 in Shanghai
ALERT = alert_view(alert_id=7, rule="wq-turbidity-major", severity="major",
                   summary="浊度超过 1 NTU", device_id="wq-0001", township="东乡", village="王村",
                   grid="一组", metric="turbidity_ntu", value=2.4, threshold=1.0,
                   started_at=STARTED, device_name="水厂出水口")


def link(alert_id: int) -> str:
    return f"https://v.example/a/{alert_id}"


def test_a_firing_message_in_chinese_carries_everything():
    title, text, alerts = render([ALERT], "firing", "zh", ZONE, link)
    assert title == "【重要·告警】浊度超过 1 NTU"
    for part in ("设备：wq-0001 水厂出水口（水质监测）", "地点：东乡 / 王村 / 一组",
                 "数值：turbidity_ntu = 2.4 NTU（阈值 1 NTU）", "开始于：2026-07-01 10:05",
                 "处理：https://v.example/a/7"):
        assert part in text, text
    assert alerts[0]["value"] == 2.4 and alerts[0]["link"] == "https://v.example/a/7"


def test_a_resolved_message_in_english_says_how_long_it_lasted():
    resolved = replace(ALERT, summary="Turbidity above 1 NTU",
                       resolved_at=STARTED + timedelta(hours=2, minutes=5))
    title, text, _ = render([resolved], "resolved", "en", ZONE, link)
    assert title == "【MAJOR·Resolved】Turbidity above 1 NTU"
    assert "Lasted: 2 h 5 min" in text and "Device: wq-0001 水厂出水口 (Water quality probe)" in text


def test_a_group_lists_twenty_and_counts_the_rest():
    cameras = [replace(ALERT, alert_id=i, device_id=f"cam-{i:03d}", kind="camera", condition="stopped",
                       metric=None, value=900.0, threshold=300.0) for i in range(25)]
    title, text, alerts = render(cameras, "firing", "zh", ZONE, link)
    assert "（共 25 条）" in title and len(alerts) == 25
    assert "cam-019" in text and "cam-020" not in text and "另有 5 条" in text
    assert "已15分无数据" in text


def test_durations():
    assert duration_text(59, "zh") == "59秒"
    assert duration_text(3 * 86400 + 3600 + 120, "zh") == "3天1小时2分"
    assert duration_text(5400, "en") == "1 h 30 min"
