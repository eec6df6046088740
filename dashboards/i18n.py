"""Titles in Chinese (the default) and English, chosen when a dashboard is built."""

from __future__ import annotations

from typing import Literal, NamedTuple

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")


class Text(NamedTuple):
    """One piece of dashboard text in both languages."""

    zh: str
    en: str

    def pick(self, language: Language) -> str:
        """The text in one language."""
        return self.zh if language == "zh" else self.en


# Display names of the columns our table panels return; SQL keeps stable English names.
COLUMN_LABELS: dict[str, Text] = {
    "device_id": Text("设备编号", "Device"),
    "name": Text("名称", "Name"),
    "kind": Text("类型", "Kind"),
    "township": Text("乡镇", "Township"),
    "village": Text("行政村", "Village"),
    "site": Text("站点", "Site"),
    "day": Text("日期", "Day"),
    "consumption_m3": Text("用水量 (m³)", "Consumption (m³)"),
    "meters": Text("水表数", "Meters"),
    "hours": Text("小时数", "Hours"),
    "min_hourly_m3": Text("最小小时用水 (m³)", "Smallest hourly use (m³)"),
    "last_24h_m3": Text("24小时用水 (m³)", "Use in 24 h (m³)"),
    "last_seen": Text("最后上报", "Last seen"),
    "silent_h": Text("静默 (小时)", "Silent (h)"),
    "reported_state": Text("上报状态", "Reported state"),
    "battery_v": Text("电池电压 (V)", "Battery (V)"),
    "ts": Text("时间", "Time"),
    "type": Text("事件", "Event"),
    "severity": Text("级别", "Severity"),
    "metric": Text("指标", "Parameter"),
    "limit_low": Text("下限", "Lower limit"),
    "limit_high": Text("上限", "Upper limit"),
    "readings_outside": Text("超限读数", "Readings outside"),
    "worst": Text("最差值", "Worst value"),
    "first_ts": Text("首次", "First"),
    "last_ts": Text("最近", "Latest"),
    "online": Text("在线", "Online"),
    "offline": Text("离线", "Offline"),
    "total": Text("总数", "Total"),
    "firmware": Text("固件版本", "Firmware"),
    "devices": Text("设备数", "Devices"),
    "species": Text("畜种", "Species"),
    "value": Text("数值", "Value"),
    "limit": Text("限值", "Limit"),
    "pct_of_limit": Text("占限值 %", "% of limit"),
    "reason": Text("原因", "Reason"),
    "alerts": Text("告警数", "Alerts"),
    "acknowledged": Text("已确认", "Acknowledged"),
    "median_ack_min": Text("确认时间中位数 (分钟)", "Median time to acknowledge (min)"),
    "p90_ack_min": Text("确认时间 P90 (分钟)", "P90 time to acknowledge (min)"),
    "status": Text("状态", "Status"),
    "priority": Text("优先级", "Priority"),
    "created_at": Text("时间", "Time"),
    "confirmed": Text("已确认播放", "Confirmed"),
    "not_confirmed": Text("未确认", "Not confirmed"),
    "rule": Text("规则", "Rule"),
    "started_at": Text("开始", "Started"),
    "critical": Text("紧急", "Critical"),
    "major": Text("重要", "Major"),
    "minor": Text("次要", "Minor"),
    "info": Text("提示", "Info"),
    "summary": Text("摘要", "Summary"),
    "acknowledged_at": Text("确认时间", "Acknowledged"),
    "acknowledged_by": Text("确认人", "Acknowledged by"),
    "channel": Text("渠道", "Channel"),
    "sent": Text("已发送", "Sent"),
    "failed": Text("失败", "Failed"),
    "scope": Text("范围", "Scope"),
    "created_by": Text("发送人", "Sent by"),
    "speakers": Text("喇叭数", "Speakers"),
    "state": Text("状态", "State"),
    "attempts": Text("尝试次数", "Attempts"),
    "last_sent_at": Text("最后发送", "Last sent"),
}
