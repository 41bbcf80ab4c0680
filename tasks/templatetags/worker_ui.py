from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def short_duration(value: timedelta | None) -> str:
    """'10 min', '1 h 30 min', '45 s' for a time limit."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if secs and not hours:
        parts.append(f"{secs} s")
    return " ".join(parts) or "0 s"
