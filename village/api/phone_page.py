"""The cadre's phone page for one alert (pure HTML, Chinese first, nothing loaded from outside)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from alerting.model import AlertView

COUNTY_TZ = ZoneInfo("Asia/Shanghai")
# Nothing from outside: inline styles, inline SVG, forms posting back here only.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

SEVERITY_ZH = {"critical": "紧急", "major": "重要", "minor": "次要", "info": "提示"}
STATE_ZH = {"firing": "告警中", "resolved": "已恢复"}

_STYLE = """
body{font-family:system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;margin:0;padding:16px;
background:#f4f5f7;color:#1d2129;font-size:17px;line-height:1.5}
main{max-width:560px;margin:auto;background:#fff;border-radius:12px;padding:16px 18px}
h1{font-size:21px;margin:0 0 4px}.en{color:#6b7280;font-size:14px}
.sev{display:inline-block;border-radius:6px;padding:0 8px;color:#fff;font-size:15px}
.critical{background:#c81e1e}.major{background:#e46a00}.minor{background:#b58900}.info{background:#3b82f6}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;margin:12px 0}dt{color:#6b7280}dd{margin:0}
.value{font-size:26px;font-weight:600}svg{width:100%;height:80px;background:#f9fafb;border-radius:8px}
textarea{width:100%;box-sizing:border-box;font-size:16px;min-height:70px;margin:8px 0;padding:8px}
button{width:100%;font-size:18px;padding:12px;border:0;border-radius:8px;background:#16a34a;color:#fff}
.done{background:#ecfdf5;border:1px solid #16a34a;border-radius:8px;padding:10px;margin-top:12px}
"""


def sparkline(points: Sequence[tuple[datetime, float]], threshold: float | None = None,
              width: int = 300, height: int = 80) -> str:
    """An inline SVG line of the values (and the threshold as a dashed line), or ''."""
    if len(points) < 2:
        return ""
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    values = [v for _, v in points] + ([threshold] if threshold is not None else [])
    low, high = min(values), max(values)
    span_t, span_v = (t1 - t0) or 1.0, (high - low) or 1.0

    def xy(t: float, v: float) -> str:
        return f"{(t - t0) / span_t * (width - 8) + 4:.1f},{height - 4 - (v - low) / span_v * (height - 8):.1f}"

    line = " ".join(xy(t.timestamp(), v) for t, v in points)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="近期数值 recent values">',
             f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{line}"/>']
    if threshold is not None:
        y = xy(t0, threshold).split(",")[1]
        parts.append(f'<line x1="0" x2="{width}" y1="{y}" y2="{y}" stroke="#c81e1e"'
                     ' stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return "".join(parts)


def _time(value: datetime | None) -> str:
    return value.astimezone(COUNTY_TZ).strftime("%Y-%m-%d %H:%M") if value else "—"


def _number(value: float | None, unit: str | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g} {escape(unit or '')}".strip()


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="referrer" content="no-referrer">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>")


def alert_page(alert: AlertView, history: Sequence[tuple[datetime, float]], action: str,
               close_valve: str | None = None) -> str:
    """The page for one alert: what, where, the value and its history, the ack form, and the
    button that closes the meter's valve where the rule asks the person to confirm it."""
    place = " / ".join(escape(p) for p in (alert.township, alert.village, alert.grid) if p) or "—"
    device = escape(alert.device_name or alert.device_id or "—")
    if alert.device_name and alert.device_id:
        device += f' <span class="en">{escape(alert.device_id)}</span>'
    severity = escape(alert.severity)
    rows = [
        ("地点 <span class=en>Place</span>", place),
        ("设备 <span class=en>Device</span>", device),
        ("状态 <span class=en>State</span>",
         f"{STATE_ZH.get(alert.state, escape(alert.state))} <span class=en>{escape(alert.state)}</span>"),
        ("开始 <span class=en>Since</span>", _time(alert.started_at)),
    ]
    if alert.resolved_at:
        rows.append(("恢复 <span class=en>Resolved</span>", _time(alert.resolved_at)))
    if alert.metric:
        rows.append(("指标 <span class=en>Metric</span>", escape(alert.metric)))
    if alert.threshold is not None:
        rows.append(("阈值 <span class=en>Threshold</span>", _number(alert.threshold, alert.unit)))
    shown = alert.last_value if alert.last_value is not None else alert.value
    details = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    if alert.acknowledged_at:
        comment = f"：{escape(alert.ack_comment)}" if alert.ack_comment else ""
        ack = (f'<div class="done" id="acknowledged">已确认 <span class=en>Acknowledged</span> · '
               f"{escape(alert.acknowledged_by or '')} · {_time(alert.acknowledged_at)}{comment}</div>")
    else:
        ack = (f'<form method="post" action="{escape(action)}">'
               '<label for="comment">备注 <span class=en>Comment</span></label>'
               '<textarea id="comment" name="comment" maxlength="1000" '
               'placeholder="例如：已到现场处理"></textarea>'
               '<button type="submit" id="ack">确认收到 <span style="font-size:14px">Acknowledge</span></button>'
               "</form>")
    if close_valve is not None:
        ack += (f'<form method="post" action="{escape(close_valve)}">'
                '<button type="submit" id="close-valve">关闭阀门 '
                '<span style="font-size:14px">Close the valve</span></button></form>')
    line = sparkline(history, alert.threshold)
    if line:
        line += '<div class="en">近 24 小时 · last 24 hours (红线：阈值 red: threshold)</div>'
    body = (f'<span class="sev {severity}">{SEVERITY_ZH.get(alert.severity, severity)}</span>'
            f"<h1>{escape(alert.summary)}</h1>"
            f'<div class="value" id="value">{_number(shown, alert.unit)}</div>'
            f"{line}<dl>{details}</dl>{ack}")
    return _page(f"告警 #{alert.alert_id}", body)


def refusal_page(expired: bool) -> str:
    """The page for an expired or invalid link."""
    if expired:
        text = ("链接已过期", "This link has expired. Open the newest notification, or ask the duty office.")
    else:
        text = ("链接无效", "This link is not valid. Open the link from the notification as it was sent.")
    return _page(text[0], f"<h1>{text[0]}</h1><p class=en>{escape(text[1])}</p>")
