"""Notification text in Chinese or English: device, place, metric, value, threshold,
since when, a link; resolved ones say what it was and how long it lasted (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerting.model import AlertView
from devices.catalogue import KIND_BY_NAME

MAX_LISTED = 20  # a group lists this many alerts, then counts the rest

SEVERITY_WORDS = {
    "zh": {"critical": "紧急", "major": "重要", "minor": "一般", "info": "提示"},
    "en": {"critical": "CRITICAL", "major": "MAJOR", "minor": "minor", "info": "info"},
}
ACTION_WORDS = {
    "zh": {"firing": "告警", "repeat": "告警（重复提醒）", "escalation": "告警升级（无人确认）",
           "resolved": "已恢复"},
    "en": {"firing": "Alert", "repeat": "Alert (reminder)", "escalation": "Escalated (unacknowledged)",
           "resolved": "Resolved"},
}
WORDS = {
    "zh": {"device": "设备", "place": "地点", "value": "数值", "threshold": "阈值",
           "since": "开始于", "lasted": "持续", "link": "处理", "more": "另有 {n} 条",
           "silent": "已{d}无数据", "event": "设备事件", "count": "共 {n} 条"},
    "en": {"device": "Device", "place": "Place", "value": "Value", "threshold": "threshold",
           "since": "Since", "lasted": "Lasted", "link": "Open", "more": "and {n} more",
           "silent": "silent for {d}", "event": "device event", "count": "{n} alerts"},
}


def duration_text(seconds: float, language: str) -> str:
    """A duration as people say it: 2 小时 5 分 / 2 h 5 min."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    units = (("天", "小时", "分") if language == "zh" else (" d", " h", " min"))
    parts = [f"{n}{u}" for n, u in zip((days, hours, mins), units, strict=True) if n]
    if not parts:
        return f"{int(seconds)}秒" if language == "zh" else f"{int(seconds)} s"
    return (" " if language == "en" else "").join(parts)


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


def _value_stopped(alert: AlertView, language: str) -> str:
    if alert.value is None or alert.value < 0:
        return WORDS[language]["silent"].format(d="?")
    return WORDS[language]["silent"].format(d=duration_text(alert.value, language))


def _value_event(alert: AlertView, language: str) -> str:
    return WORDS[language]["event"]


def _unit(alert: AlertView) -> str:
    kind = KIND_BY_NAME.get(alert.kind or "")
    spec = kind.metric(alert.metric) if kind and alert.metric else None
    return f" {spec.unit}" if spec and not spec.boolean else ""


def _value_measured(alert: AlertView, language: str) -> str:
    words, unit = WORDS[language], _unit(alert)
    value = _number(alert.value) + unit
    shown = f"{alert.metric} = {value}" if alert.metric else value
    if alert.threshold is not None:
        level = f"{words['threshold']} {_number(alert.threshold)}{unit}"
        shown += f"（{level}）" if language == "zh" else f" ({level})"
    return shown


def _value_outage(alert: AlertView, language: str) -> str:
    share, level = _number(alert.value), _number(alert.threshold)
    return (f"{share}% 的设备无数据（阈值 {level}%）" if language == "zh"
            else f"{share}% of devices silent (threshold {level}%)")


VALUE_TEXT: dict[str, Callable[[AlertView, str], str]] = {
    "stopped": _value_stopped, "event": _value_event, "outage": _value_outage,
}


def value_text(alert: AlertView, language: str) -> str:
    """The triggering value as words (silence for stopped reporting, levels otherwise)."""
    return VALUE_TEXT.get(alert.condition, _value_measured)(alert, language)


def place_text(alert: AlertView) -> str:
    """Township / village / grid."""
    return " / ".join(p for p in (alert.township, alert.village, alert.grid) if p)


def device_text(alert: AlertView, language: str) -> str:
    """The device id, its name and its kind's label."""
    if alert.device_id is None:
        return "—"
    kind = KIND_BY_NAME.get(alert.kind or "")
    label = (kind.label_zh if language == "zh" else kind.label_en) if kind else alert.kind
    name = f" {alert.device_name}" if alert.device_name else ""
    return f"{alert.device_id}{name}（{label}）" if language == "zh" else f"{alert.device_id}{name} ({label})"


def local_time(ts: datetime, zone: ZoneInfo) -> str:
    """A time in the county's zone, to the minute."""
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def render(
    alerts: Sequence[AlertView], action: str, language: str, zone: ZoneInfo,
    link: Callable[[int], str | None],
) -> tuple[str, str, list[dict[str, Any]]]:
    """Title, text and structured alerts of one notification (one alert or a group)."""
    words, first = WORDS[language], alerts[0]
    sep = "：" if language == "zh" else ": "
    title = (f"【{SEVERITY_WORDS[language][first.severity]}·{ACTION_WORDS[language][action]}】"
             f"{first.summary}")
    if len(alerts) > 1:
        title += f"（{words['count'].format(n=len(alerts))}）" if language == "zh" \
            else f" ({words['count'].format(n=len(alerts))})"
    lines: list[str] = []
    for alert in alerts[:MAX_LISTED]:
        lines.append(f"{words['device']}{sep}{device_text(alert, language)}")
        lines.append(f"{words['place']}{sep}{place_text(alert)}")
        lines.append(f"{words['value']}{sep}{value_text(alert, language)}")
        lines.append(f"{words['since']}{sep}{local_time(alert.started_at, zone)}")
        if alert.resolved_at is not None:
            lasted = (alert.resolved_at - alert.started_at).total_seconds()
            lines.append(f"{words['lasted']}{sep}{duration_text(lasted, language)}")
        url = link(alert.alert_id)
        if url:
            lines.append(f"{words['link']}{sep}{url}")
        lines.append("")
    if len(alerts) > MAX_LISTED:
        lines.append(words["more"].format(n=len(alerts) - MAX_LISTED))
    structured = [{
        "id": a.alert_id, "rule": a.rule, "severity": a.severity, "summary": a.summary,
        "device_id": a.device_id, "kind": a.kind, "township": a.township, "village": a.village,
        "grid": a.grid, "metric": a.metric, "value": a.value, "threshold": a.threshold,
        "started_at": a.started_at.isoformat(),
        "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
        "link": link(a.alert_id),
    } for a in alerts]
    return title, "\n".join(lines).rstrip(), structured
