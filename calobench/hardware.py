"""What machine a number was measured on."""

from __future__ import annotations

import platform
from pathlib import Path

from calobench.errors import CalobenchError


def cpu_name() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else what platform reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_generation() -> str | None:
    """Vendor, family and model numbers of the CPU (from /proc/cpuinfo on Linux, else None):
    e.g. 'AuthenticAMD family 26 model 2'. Virtual machines often report a bare model name
    ('AMD EPYC') for CPUs of different generations, whose vector units round differently."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("vendor_id", "cpu family", "model") and key not in fields:
                fields[key] = value.strip()
            if not line.strip() and fields:
                break
    except OSError:
        return None
    if len(fields) < 3:
        return None
    return f"{fields['vendor_id']} family {fields['cpu family']} model {fields['model']}"


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
