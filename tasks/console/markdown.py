"""Markdown for job instructions, rendered safely: raw HTML is escaped before rendering, and links or
images may only point at http(s), mailto or relative addresses."""

from __future__ import annotations

import html
import re

import markdown as md
from django.utils.safestring import SafeString, mark_safe

_UNSAFE_URL = re.compile(r'(href|src)="(?!https?:|mailto:|/|#)[^"]*"', re.IGNORECASE)


def render_markdown(text: str) -> SafeString:
    escaped = html.escape(text or "", quote=False)
    rendered = md.markdown(escaped, extensions=["sane_lists"], output_format="html")
    return mark_safe(_UNSAFE_URL.sub(r'\1="#"', rendered))
