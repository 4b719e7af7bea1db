"""--format table|json|csv|markdown of the listing and result commands, run without a terminal
(stdout a pipe), as `calobench datasets | cat` and `calobench models | grep` would."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error

import calobench
from calobench.cli.output import csv_text, emit, markdown, render

FORMATS = ("json", "csv", "markdown")


def check_format(fmt: str, stdout: str, first_column: str) -> object:
    """Parse stdout as ``fmt``; returns the parsed object (json), the DataFrame (csv) or the lines (markdown)."""
    if fmt == "json":
        return json.loads(stdout)
    if fmt == "csv":
        frame = pd.read_csv(io.StringIO(stdout))
        assert frame.columns[0] == first_column and len(frame) > 0
        return frame
    lines = stdout.splitlines()
    assert lines[0].startswith(f"| {first_column} |"), lines[0]
    assert set(lines[1].replace("|", "").split()) == {"---"}
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    return lines


def test_datasets_piped_table_keeps_full_names(cli):
    result = cli("datasets")
    assert result.returncode == 0, result.stderr
    for name in calobench.dataset_names():
        assert f" {name} " in result.stdout, name
    assert "…" not in result.stdout


def test_datasets_through_cat_and_models_through_grep():
    """The shell pipes of the issue, literally."""
    cat = subprocess.run(f"{sys.executable} -m calobench datasets | cat", shell=True, capture_output=True,
                         text=True, timeout=300)
    assert cat.returncode == 0, cat.stderr
    assert cat.stdout.count("calochallenge-2") == 1 and "calochallenge-1-photons" in cat.stdout
    grep = subprocess.run(f"{sys.executable} -m calobench models | grep cell-transformer", shell=True,
                          capture_output=True, text=True, timeout=300)
    assert grep.returncode == 0, grep.stderr
    assert "cell-transformer" in grep.stdout and "autoregressive" in grep.stdout


def test_closed_pipe_is_quiet():
    head = subprocess.run(f"{sys.executable} -m calobench metrics --format csv | head -1", shell=True,
                          capture_output=True, text=True, timeout=300)
    assert head.stdout.strip() == "pattern,stage,direction,description,source"
    assert "Traceback" not in head.stderr and "BrokenPipe" not in head.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_datasets_formats(cli, fmt):
    result = cli("datasets", "--format", fmt)
    assert result.returncode == 0, result.stderr
    parsed = check_format(fmt, result.stdout, "name")
    if fmt == "json":
        assert [d["name"] for d in parsed] == calobench.dataset_names()
    if fmt == "csv":
        assert list(parsed["name"]) == calobench.dataset_names()
        assert parsed.set_index("name").loc["calochallenge-2", "cells"] == "6480"
        assert parsed["embedded"].dtype == bool
    if fmt == "markdown":
        assert len(parsed) == 2 + len(calobench.dataset_names())


@pytest.mark.parametrize("fmt", FORMATS)
def test_models_formats(cli, fmt):
    result = cli("models", "--format", fmt)
    assert result.returncode == 0, result.stderr
    parsed = check_format(fmt, result.stdout, "name")
    if fmt == "json":
        assert "cell-transformer" in [m["name"] for m in parsed["models"]]
    if fmt == "csv":
        row = parsed.set_index("name").loc["cell-transformer"]
        assert row["family"] == "autoregressive" and "cepc" in row["datasets"]
    if fmt == "markdown":
        assert any(line.startswith("| cell-transformer |") for line in parsed)


@pytest.mark.parametrize("fmt", FORMATS)
def test_inspect_formats(cli, tmp_path, fmt):
    path = tmp_path / "img.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=np.full((5, 1), 1000.0, np.float32))
        f.create_dataset("showers", data=np.ones((5, 121), np.float32))
    result = cli("inspect", str(path), "--dataset", "stcf11x11", "--format", fmt)
    assert result.returncode == 0, result.stderr
    parsed = check_format(fmt, result.stdout, "field")
    if fmt == "json":
        assert parsed["events"] == 5 and parsed["dataset"] == "stcf11x11"
    if fmt == "csv":
        values = dict(zip(parsed["field"], parsed["value"]))
        assert values["events"] == "5" and float(values["mean_total_energy_MeV"]) == 121.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_metrics_command_formats(cli, fmt):
    result = cli("metrics", "--format", fmt)
    assert result.returncode == 0, result.stderr
    parsed = check_format(fmt, result.stdout, "pattern")
    if fmt == "json":
        by_pattern = {row["pattern"]: row for row in parsed}
        assert by_pattern["auc_low"]["direction"] == "closer to 0.5"
        assert by_pattern["sep_<feature>"]["direction"] == "lower"
        assert by_pattern["precision"]["direction"] == "higher"
        assert all(row["description"] and row["source"] for row in parsed)


def test_metrics_command_explains_names_and_refuses_unknown(cli):
    result = cli("metrics", "jsd_high_xgb", "sep_e_layer_3", "--format", "json")
    assert result.returncode == 0, result.stderr
    infos = {row["name"]: row for row in json.loads(result.stdout)}
    assert infos["jsd_high_xgb"]["stage"] == "cls-xgb" and infos["jsd_high_xgb"]["direction"] == "lower"
    assert "layer 3" in infos["sep_e_layer_3"]["description"]
    table = cli("metrics")
    assert "resolution_<a|b|c>_diff" in table.stdout and "closer to 0.5" in table.stdout
    assert "<feature>" in cli("metrics", "--features").stdout
    assert_user_error(cli("metrics", "auc_medium"), "auc_medium", "calobench metrics")


@pytest.mark.parametrize("fmt", ("table",) + FORMATS)
def test_compare_formats(cli, fmt):
    """compare of the embedded stcf11x11 reference against itself: stdout holds only the format."""
    result = cli("compare", "stcf11x11", "stcf11x11", "--metrics", "hist,resolution", "--max-events", "200",
                 "--quiet", "--format", fmt)
    assert result.returncode == 0, result.stderr
    if fmt == "table":
        assert "hist" in result.stdout and "resolution" in result.stdout and "better" in result.stdout
        assert "sep_etot_einc" in result.stdout
        return
    parsed = check_format(fmt, result.stdout, "name" if fmt != "json" else "")
    if fmt == "json":
        assert parsed["metrics"]["sep_etot_einc"]["value"] == 0.0 and "info" in parsed
    if fmt == "csv":
        row = parsed.set_index("name").loc["sep_etot_einc"]
        assert row["stage"] == "hist" and row["direction"] == "lower" and row["value"] == 0.0
        assert {"resolution", "hist"} == set(parsed["stage"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_time_formats(cli, fmt):
    result = cli("time", "--model", "mean-shower", "--dataset", "stcf11x11", "--batch-sizes", "1,10",
                 "--repeats", "1", "--budget", "1", "--format", fmt)
    assert result.returncode == 0, result.stderr
    parsed = check_format(fmt, result.stdout, "device")
    if fmt == "json":
        assert parsed["model"] == "mean-shower" and set(parsed["timing"]["devices"]["cpu"]["batches"]) == {"1", "10"}
    if fmt == "csv":
        assert list(parsed["batch_size"]) == [1, 10] and (parsed["ms_per_shower"] > 0).all()
    assert "timing the" in result.stderr


def test_json_alias_still_works(cli):
    assert json.loads(cli("models", "--json").stdout)["models"]


def test_render_helpers():
    columns, rows = ["name", "value", "ok"], [["a|b", 0.123456789, True], ["c", None, False]]
    assert markdown(columns, rows).splitlines()[2] == "| a\\|b | 0.1235 | yes |"
    assert markdown(["pattern"], [["sep_<feature>"]]).splitlines()[2] == "| sep_\\<feature> |"
    frame = pd.read_csv(io.StringIO(csv_text(columns, rows)))
    assert frame["value"][0] == 0.123456789 and np.isnan(frame["value"][1]) and frame["ok"].tolist() == [True, False]
    assert json.loads(render("json", columns, [["x", float("nan"), True]])) == [{"name": "x", "value": None,
                                                                                   "ok": True}]
    with pytest.raises(ValueError):
        render("yaml", columns, rows)


def test_piped_table_is_not_cut(capsys):
    long = "a-very-long-model-name-" * 8
    emit("table", ["name", "x"], [[long, 1]], title="t")
    out = capsys.readouterr().out
    assert long in out and "…" not in out
    assert all(line == line.rstrip() for line in out.splitlines())
