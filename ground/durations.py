"""Durations as people say them, in Chinese or English (alert messages, limits in errors)."""

from __future__ import annotations


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
