"""Self-contained HTML reports of a comparison (plots embedded as base64 PNG)."""

from calobench.report.html import write_report

__all__ = ["write_report"]
