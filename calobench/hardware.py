"""What machine a number was measured on."""

from __future__ import annotations

import platform
from pathlib import Path

from calobench.errors import CalobenchError


def _first_cpu() -> dict[str, str]:
    """The fields of the first processor in /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_name() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else what platform reports)."""
    return _first_cpu().get("model name") or platform.processor() or platform.machine()


def cpu_generation() -> str | None:
    """Vendor, family and model numbers of the CPU (from /proc/cpuinfo on Linux, else None):
    e.g. 'AuthenticAMD family 26 model 2'. Virtual machines often report a bare model name
    ('AMD EPYC') for CPUs of different generations, whose vector units round differently."""
    cpu = _first_cpu()
    if not all(key in cpu for key in ("vendor_id", "cpu family", "model")):
        return None
    return f"{cpu['vendor_id']} family {cpu['cpu family']} model {cpu['model']}"


def available_devices() -> list[str]:
    """'cpu', plus 'cuda' and 'mps' when torch reports them available."""
    devices = ["cpu"]
    try:
        import torch
    except ImportError:
        return devices
    if torch.cuda.is_available():
        devices.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def check_device(device: str, what: str = "device") -> str:
    """``device`` ('auto', 'cpu', 'cuda', 'cuda:N', 'mps') if this machine has it, else a one-line
    CalobenchError listing the devices present."""
    if device == "auto":
        return device
    present = available_devices()
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()):
        raise CalobenchError(f"{what} {device!r}: unknown device; devices present: {', '.join(present)}")
    if kind not in present:
        raise CalobenchError(f"{what} {device!r}: not available on this machine; devices present: "
                             f"{', '.join(present)}")
    if kind == "cuda" and index:
        import torch

        if int(index) >= torch.cuda.device_count():
            raise CalobenchError(f"{what} {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
