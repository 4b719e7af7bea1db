"""``--set KEY=VALUE`` options: model settings on top of a preset (``calobench run``, ``calobench time``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from calobench.errors import CalobenchError


def parse_settings(items: list[str] | None, allowed: Iterable[str] | None = None, what: str = "") -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: value}``. A value is read as JSON when it is one
    (numbers, true, false, null, "quoted text"), else kept as text. Keys outside ``allowed``
    (e.g. the preset's settings) are refused, so that a misspelt key is not silently ignored."""
    settings: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CalobenchError(f"--set {item!r}: expected KEY=VALUE")
        if allowed is not None and key not in allowed:
            raise CalobenchError(f"--set {key}: not a setting of {what}; its settings: {', '.join(sorted(allowed))}")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


def preset_settings(items: list[str] | None, model: str, dataset: str, preset: str) -> dict[str, Any]:
    """``--set`` items checked against the settings of ``model``'s ``preset`` (an unknown model,
    dataset or preset is reported by the model itself when it is built)."""
    from calobench.models.base import check_setting_types
    from calobench.models.registry import check_supported

    settings = check_supported(model, dataset).presets.get(preset)
    if settings is None or not items:
        return {}
    parsed = parse_settings(items, settings, f"{model}'s {preset} preset")
    check_setting_types(parsed, settings)
    return parsed
