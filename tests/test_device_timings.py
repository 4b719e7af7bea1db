"""Leaderboard entries carry timing rows measured apart from the training run (``device_timings``,
e.g. GPU rows from benchmarks/gpu_timing.py), and `leaderboard show` has the GPU columns."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from calobench.cli import main
from calobench.errors import CalobenchError
from calobench.leaderboard import table, validate_directory, validate_entry, validation_errors
from calobench.leaderboard.device_timing import attach, attach_to_file, record_for, record_from_run

ROOT = Path(__file__).resolve().parents[1]
CURATED_DCGAN = ROOT / "leaderboards" / "stcf11x11" / "bdf83f1dfdeb3a69.json"

#: A GPU record with known numbers (the shape benchmarks/gpu_timing.py writes on a GPU).
CUDA_RECORD = {"device": "cuda", "device_name": "NVIDIA H200", "batch_sizes": [1, 100, 10000, 100000],
               "command": "python3 benchmarks/gpu_timing.py --device cuda -o gpu_timing.json",
               "measured": "2026-12-02T07:00:00+00:00", "model_state": "fresh", "preset": "quick",
               "torch_version": "2.11.0+cu128", "cuda_version": "12.8", "git_commit": None, "threads": 1,
               "batches": {"1": {"ms_per_shower": 0.812, "std": 0.01, "repeats": 5, "warmup": 2},
                           "100": {"ms_per_shower": 0.0091, "std": 0.0001, "repeats": 5},
                           "10000": {"ms_per_shower": 0.000123, "std": 0.000001, "repeats": 5},
                           "100000": {"skipped": "one call estimated at 12.0 s (> --max-call-s 10)",
                                      "estimated_s": 12.0}}}


@pytest.fixture(scope="module")
def cpu_report(tmp_path_factory) -> dict:
    """A real benchmarks/gpu_timing.py report, measured on the CPU (dcgan, tiny, stcf11x11)."""
    out = tmp_path_factory.mktemp("gpu-timing") / "gpu_timing.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_timing.py"), "--device", "cpu",
                           "--models", "dcgan", "--datasets", "stcf11x11", "--preset", "quick",
                           "--batch-sizes", "1,100", "--check-batch", "3000", "--repeats", "2", "--budget", "0.5",
                           "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def curated_dcgan() -> dict:
    return json.loads(CURATED_DCGAN.read_text())


def test_curated_entries_stay_valid_with_the_optional_field():
    problems = validate_directory(ROOT / "leaderboards")
    assert problems and all(v == [] for v in problems.values())
    assert all("device_timings" not in json.loads(p.read_text()) for p in (ROOT / "leaderboards").glob("*/*.json"))


def test_a_record_of_the_script_validates_and_attaches(cpu_report):
    record = record_for(cpu_report, "dcgan", "stcf11x11", "quick")
    assert record["device"] == "cpu" and record["batch_sizes"] == [1, 100]
    assert record["command"].endswith(cpu_report["command"].split(" ", 1)[1])
    assert record["batches"]["100"]["ms_per_shower"] > 0 and record["torch_version"] == cpu_report["torch_version"]
    entry = attach(curated_dcgan(), record)
    assert entry["device_timings"] == [record]
    # the same device and command again replaces the record; another command adds one
    again = attach(entry, {**record, "command": "another command"})
    assert len(attach(entry, record)["device_timings"]) == 1 and len(again["device_timings"]) == 2


def test_records_of_other_runs_are_refused_with_one_line(cpu_report):
    with pytest.raises(CalobenchError, match="no run of flow on stcf11x11"):
        record_for(cpu_report, "flow", "stcf11x11")
    with pytest.raises(CalobenchError, match="preset 'quick', the entry is preset 'full'"):
        record_for(cpu_report, "dcgan", "stcf11x11", "full")
    failed = copy.deepcopy(cpu_report)
    failed["runs"][0].update(status="failed", reason="CPU and cuda disagree")
    with pytest.raises(CalobenchError, match="failed .CPU and cuda disagree"):
        record_for(failed, "dcgan", "stcf11x11")
    with pytest.raises(CalobenchError, match="not a benchmarks/gpu_timing.py report"):
        record_for({"runs": []}, "dcgan", "stcf11x11")


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r.pop("command"), "'command' is a required property"),
    (lambda r: r.update(device="gpu"), "device"),
    (lambda r: r.update(batch_sizes=[0]), "batch_sizes"),
    (lambda r: r["batches"]["1"].update(ms_per_shower=-1.0), "ms_per_shower"),
    (lambda r: r.update(extra="x"), "extra"),
])
def test_a_bad_record_is_an_invalid_entry(mutate, where):
    record = copy.deepcopy(CUDA_RECORD)
    mutate(record)
    errors = validation_errors({**curated_dcgan(), "device_timings": [record]})
    assert errors and any("device_timings" in e and where in e for e in errors), errors


def test_show_has_the_gpu_columns(tmp_path, capsys):
    folder = tmp_path / "board"
    (folder / "stcf11x11").mkdir(parents=True)
    entry = attach(curated_dcgan(), CUDA_RECORD)
    validate_entry(entry)
    (folder / "stcf11x11" / CURATED_DCGAN.name).write_text(json.dumps(entry))
    frame = table("stcf11x11", user_dir=folder, curated=False)
    row = frame.iloc[0]
    assert row["ms_cuda_bs1"] == 0.812 and row["ms_cuda_bs10000"] == 0.000123
    assert row["device_name_cuda"] == "NVIDIA H200" and isinstance(row["ms_cuda_bs100000_skipped"], str)
    assert row["ms_cpu_bs1"] == curated_dcgan()["timing"]["devices"]["cpu"]["batches"]["1"]["ms_per_shower"]
    assert main(["leaderboard", "show", "stcf11x11", "--leaderboard-dir", str(folder), "--no-curated",
                 "--format", "markdown"]) == 0
    header, cells = markdown_row(capsys.readouterr().out)
    assert cells[header.index("gpu ms @1")] == "0.812" and cells[header.index("gpu ms @10000")] == "0.000123"
    # an entry without device_timings leaves the GPU columns empty
    (folder / "stcf11x11" / CURATED_DCGAN.name).write_text(CURATED_DCGAN.read_text())
    assert main(["leaderboard", "show", "stcf11x11", "--leaderboard-dir", str(folder), "--no-curated",
                 "--format", "markdown"]) == 0
    header, cells = markdown_row(capsys.readouterr().out)
    assert cells[header.index("gpu ms @1")] == "" and cells[header.index("cpu ms @1")] != ""


def markdown_row(text: str) -> tuple[list[str], list[str]]:
    """(header, cells) of the only entry row of `leaderboard show --format markdown` (whichever table)."""
    def split(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("| yours"))
    return split(lines[row - 2]), split(lines[row])


def test_attach_timing_cli_rewrites_the_entry(tmp_path, cpu_report, capsys):
    entry_file = tmp_path / "stcf11x11" / CURATED_DCGAN.name
    entry_file.parent.mkdir()
    entry_file.write_text(CURATED_DCGAN.read_text())
    report = tmp_path / "gpu_timing.json"
    report.write_text(json.dumps(cpu_report))
    assert main(["leaderboard", "attach-timing", str(entry_file), "--from", str(report)]) == 0
    assert "added cpu timing" in capsys.readouterr().out
    entry = json.loads(entry_file.read_text())
    assert entry["device_timings"][0]["batches"]["1"]["ms_per_shower"] > 0
    validate_entry(entry)
    report.write_text("{}")
    assert main(["leaderboard", "attach-timing", str(entry_file), "--from", str(report)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a benchmarks/gpu_timing.py report" in err[0]
    assert json.loads(entry_file.read_text()) == entry  # unchanged by the refused attach
    with pytest.raises(CalobenchError):
        attach_to_file(tmp_path / "missing.json", report)


def test_record_from_run_leaves_out_skips_without_an_estimate(cpu_report):
    report = copy.deepcopy(cpu_report)
    run = report["runs"][0]
    run["timing"]["devices"]["cpu"]["batches"]["100000"] = {"skipped": "out of device memory", "estimated_s": None}
    report["settings"]["batch_sizes"] = [1, 100, 100000]
    record = record_from_run(report, run)
    assert "100000" not in record["batches"] and record["batch_sizes"] == [1, 100, 100000]
    validate_entry(attach(curated_dcgan(), record))
