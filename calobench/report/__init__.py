"""Self-contained HTML reports of a comparison (plots embedded as base64 PNG)."""

from .html import write_report

__all__ = ["write_report"]
