"""Error messages name the option that resolves them; compare infers an ambiguous file's dataset
from a reference that names one."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from calobench import CalobenchError
from calobench.cli import main
from calobench.datasets import load_reference

QUICK = ["--metrics", "hist,resolution", "--quiet"]


def image_file(path, n: int = 40):
    """A plain CaloChallenge-layout file of 121-cell showers (no geometry declared)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=np.full((n, 1), 1000.0, np.float32))
        f.create_dataset("showers", data=rng.exponential(1.0, (n, 121)).astype(np.float32))
    return str(path)


def user_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process; assert exit status 2 and one line on stderr; return that line."""
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_ambiguous_cell_count_names_the_dataset_option(tmp_path, capsys):
    path = image_file(tmp_path / "img.h5")
    line = user_error(capsys, ["inspect", path])
    assert "stcf11x11" in line and "bes3-11x11" in line and "--dataset" in line


@pytest.mark.parametrize("reference", ["stcf11x11", "bes3-11x11"])
def test_compare_takes_the_dataset_from_a_named_reference(tmp_path, capsys, reference):
    out = tmp_path / "r.json"
    assert main(["compare", image_file(tmp_path / "gen.h5"), reference, "--max-events", "40", "--json", str(out)]
                + QUICK) == 0
    result = json.loads(out.read_text())
    assert result["info"]["geometry"] == reference and "sep_etot_einc" in result["metrics"]


def test_compare_of_two_ambiguous_files_still_asks_for_the_dataset(tmp_path, capsys):
    path = image_file(tmp_path / "gen.h5")
    assert "--dataset" in user_error(capsys, ["compare", path, path] + QUICK)
    assert main(["compare", path, path, "--dataset", "stcf11x11"] + QUICK) == 0


def test_no_embedded_reference_names_the_reference_option(tmp_path, capsys):
    with pytest.raises(CalobenchError, match="--reference FILE"):
        load_reference("calochallenge-1-photons")
    line = user_error(capsys, ["compare", str(tmp_path / "x.h5"), "calochallenge-1-photons"] + QUICK)
    assert "no embedded reference sample" in line and "--reference" in line


def test_selftest_without_embedded_sample_lists_datasets_that_have_one(capsys):
    line = user_error(capsys, ["selftest", "--dataset", "calochallenge-1-photons", "--quick", "--quiet"])
    assert "--dataset calochallenge-1-photons" in line and "stcf11x11" in line


def test_unknown_preset_and_unsupported_dataset_name_their_options(capsys):
    assert "--preset" in user_error(capsys, ["time", "--model", "mean-shower", "--dataset", "stcf11x11",
                                             "--preset", "huge"])
    line = user_error(capsys, ["time", "--model", "dcgan", "--dataset", "darkshine"])
    assert "--dataset" in line and "calobench models --dataset darkshine" in line


def test_time_takes_a_reference_file_when_there_is_no_embedded_sample(tmp_path, capsys):
    path = tmp_path / "photons.h5"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=rng.uniform(1e3, 1e4, (30, 1)).astype(np.float32))
        f.create_dataset("showers", data=rng.exponential(1.0, (30, 368)).astype(np.float32))
    args = ["time", "--model", "mean-shower", "--dataset", "calochallenge-1-photons", "--batch-sizes", "1",
            "--repeats", "1", "--devices", "cpu"]
    assert "--reference" in user_error(capsys, args)
    assert main(args + ["--reference", str(path), "--format", "json"]) == 0
    timing = json.loads(capsys.readouterr().out)["timing"]
    assert timing["devices"]["cpu"]["batches"]["1"]["ms_per_shower"] > 0
