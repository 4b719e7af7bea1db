"""Command line of the core: datasets, inspect, and every bad input giving one line and exit 2."""

import json

import h5py
import numpy as np
import pytest
from conftest import assert_user_error

import calobench
from calobench import CalobenchError


def write_challenge_file(path, energies, showers, **extra):
    with h5py.File(path, "w") as f:
        if energies is not None:
            f.create_dataset("incident_energies", data=energies)
        if showers is not None:
            f.create_dataset("showers", data=showers)
        for key, value in extra.items():
            f.create_dataset(key, data=value)
    return path


def good(n=4, cells=6480):
    rng = np.random.default_rng(0)
    return np.full((n, 1), 1000.0, np.float32), rng.exponential(1.0, (n, cells)).astype(np.float32)


def test_datasets_lists_all_with_json(cli):
    result = cli("datasets", "--json")
    assert result.returncode == 0, result.stderr
    names = [d["name"] for d in json.loads(result.stdout)]
    assert names == calobench.dataset_names()
    assert len(names) == 8


def test_datasets_show_and_unknown_name(cli):
    result = cli("datasets", "show", "calochallenge-2", "--json")
    info = json.loads(result.stdout)
    assert info["cells"] == 6480 and info["kind"] == "cylindrical"
    assert_user_error(cli("datasets", "show", "atlas"), "unknown dataset 'atlas'", "calochallenge-2")


def test_inspect_reports_negative_cells_without_failing(cli, tmp_path):
    energies, showers = good()
    showers[1, :3] = -0.5
    path = write_challenge_file(tmp_path / "neg.h5", energies, showers)
    result = cli("inspect", str(path), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["negative_cells"] == 3 and info["events_with_negative_cells"] == 1
    assert info["dataset"] == "calochallenge-2" and info["geometry_source"] == "inferred"
    assert info["events"] == 4


def _bad_files(tmp_path):
    energies, showers = good()
    nan_showers = showers.copy()
    nan_showers[2, 17] = np.nan
    cases = {
        "missing showers": (write_challenge_file(tmp_path / "a.h5", energies, None), "'showers'", "missing"),
        "missing energies": (write_challenge_file(tmp_path / "b.h5", None, showers), "'incident_energies'", "missing"),
        "wrong voxel count": (write_challenge_file(tmp_path / "c.h5", energies, showers[:, :6400]), "'showers'",
                              "6400"),
        "event count mismatch": (write_challenge_file(tmp_path / "d.h5", energies[:3], showers), "'showers'",
                                 "expected 3 events"),
        "string dtype": (write_challenge_file(tmp_path / "e.h5", np.array([[b"x"]] * 4), showers),
                         "'incident_energies'", "numeric"),
        "nan showers": (write_challenge_file(tmp_path / "f.h5", energies, nan_showers), "'showers'", "finite"),
        "negative energy": (write_challenge_file(tmp_path / "g.h5", -energies, showers), "'incident_energies'",
                            "positive"),
        "infinite energy": (write_challenge_file(tmp_path / "h.h5", energies * np.inf, showers),
                            "'incident_energies'", "finite"),
    }
    text = tmp_path / "text.h5"
    text.write_text("incident_energies,showers\n1,2\n")
    cases["not hdf5"] = (text, "text.h5", "not a readable HDF5 file")
    full = write_challenge_file(tmp_path / "full.h5", *good(n=200))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    cases["truncated"] = (truncated, "truncated.h5", "")
    cases["no such file"] = (tmp_path / "absent.h5", "absent.h5", "no such file")
    return cases


def test_every_bad_input_gives_one_line_and_status_2(cli, tmp_path):
    for case, (path, key, problem) in _bad_files(tmp_path).items():
        result = cli("inspect", str(path))
        assert_user_error(result, str(path.name), key, problem)


def test_bad_inputs_raise_calobench_error_in_python(tmp_path):
    for case, (path, key, problem) in _bad_files(tmp_path).items():
        with pytest.raises(CalobenchError) as info:
            calobench.load(path).showers  # showers are validated when read
        assert key in str(info.value) and "\n" not in str(info.value), case


def test_shape_checked_against_the_named_dataset(cli, tmp_path):
    energies, showers = good(cells=368)
    path = write_challenge_file(tmp_path / "ds1.h5", energies, showers)
    assert cli("inspect", str(path), "--dataset", "calochallenge-1-photons").returncode == 0
    assert_user_error(cli("inspect", str(path), "--dataset", "calochallenge-2"), "'showers'",
                      "(N, 6480)", "(4, 368)")
    assert_user_error(cli("inspect", str(path), "--dataset", "atlas"), "unknown dataset 'atlas'")


def test_ambiguous_cell_count_asks_for_the_dataset(cli, tmp_path):
    energies, showers = good(cells=121)
    path = write_challenge_file(tmp_path / "img.h5", energies, showers)
    assert_user_error(cli("inspect", str(path)), "stcf11x11", "bes3-11x11")
    assert cli("inspect", str(path), "--dataset", "bes3-11x11").returncode == 0


def test_help_everywhere(cli):
    for args in [(), ("datasets",), ("inspect",)]:
        result = cli(*args, "--help")
        assert result.returncode == 0 and "usage" in result.stdout


def test_unknown_name_for_load():
    with pytest.raises(CalobenchError, match="neither a file nor a registered dataset"):
        calobench.load("stcf12x12")
