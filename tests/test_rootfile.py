"""ROOT input (uproot): trees written by uproot itself read back equal to the HDF5 path."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

import calobench
from calobench.cli import main
from calobench.data.rootfile import write_root
from calobench.data.showerfile import save
from calobench.errors import CalobenchError
from tests.conftest import assert_user_error

N = 600
#: A BESIII-like tree: custom tree and branch names, an 11x11 hit map, the 4-momentum.
BES3_BRANCHES = {"energy": "mc_e", "particle": "pdg", "px": "mc_px", "py": "mc_py", "pz": "mc_pz", "E": "mc_E4",
                 "cells": "hitmap"}


def _bes3_tree(path, sample) -> None:
    """Write ``sample`` (a bes3-11x11 ShowerSet) as tree 'bes3' with 11x11 float hit maps, using uproot."""
    c = sample.conditions
    data = {"mc_e": sample.energies, "pdg": c["particle"].astype(np.int32), "mc_px": c["px"], "mc_py": c["py"],
            "mc_pz": c["pz"], "mc_E4": c["E"], "hitmap": sample.showers.reshape(-1, 11, 11)}
    with uproot.recreate(path) as f:
        f.mktree("bes3", {k: (v.dtype, v.shape[1:]) for k, v in data.items()})
        f["bes3"].extend(data)


@pytest.fixture(scope="module")
def bes3():
    ref = calobench.load("bes3-11x11")
    return ref.slice(0, N), ref.slice(N, 2 * N)


def _branch_args(mapping: dict[str, str]) -> list[str]:
    return [a for role, expr in mapping.items() for a in ("--branch", f"{role}={expr}")]


def test_bes3_tree_reads_equal_to_hdf5(tmp_path, bes3):
    gen, _ = bes3
    _bes3_tree(tmp_path / "sim.root", gen)
    s = calobench.load(tmp_path / "sim.root", dataset="bes3-11x11", tree="bes3", branches=BES3_BRANCHES)
    assert len(s) == N and s.dataset == "bes3-11x11"
    assert np.array_equal(s.energies, gen.energies)
    for name in gen.conditions:
        assert np.array_equal(s.conditions[name], gen.conditions[name]), name
    chunks = [c.showers for c in s.iter_chunks(250)]  # streamed, entry range by entry range
    assert [len(c) for c in chunks] == [250, 250, 100]
    assert np.array_equal(np.concatenate(chunks), gen.showers)


def test_compare_root_equals_its_hdf5_twin(tmp_path, bes3):
    gen, ref = bes3
    _bes3_tree(tmp_path / "sim.root", gen)
    save(gen, tmp_path / "sim.h5")
    save(ref, tmp_path / "ref.h5")
    common = ["--dataset", "bes3-11x11", "--metrics", "hist,resolution,fpd,cls-xgb", "--repeats", "1", "--quiet"]
    assert main(["compare", str(tmp_path / "sim.h5"), str(tmp_path / "ref.h5"), "--json",
                 str(tmp_path / "h5.json"), *common]) == 0
    assert main(["compare", str(tmp_path / "sim.root"), str(tmp_path / "ref.h5"), "--json",
                 str(tmp_path / "root.json"), "--tree", "bes3", *_branch_args(BES3_BRANCHES), *common]) == 0
    h5 = json.loads((tmp_path / "h5.json").read_text())["metrics"]
    root = json.loads((tmp_path / "root.json").read_text())["metrics"]
    assert len(h5) > 10 and root == h5


def test_expressions_and_jagged_cell_lists(tmp_path, bes3):
    gen, _ = bes3
    event, cell = np.nonzero(gen.showers)
    counts = np.bincount(event, minlength=N)
    hits = ak.zip({"id": ak.unflatten(cell.astype(np.int32), counts),
                   "e": ak.unflatten(gen.showers[event, cell] / 1000.0, counts)})  # GeV
    data = {"e_gev": gen.energies / 1000.0, "hit": hits, **{k: v for k, v in gen.conditions.items()}}
    with uproot.recreate(tmp_path / "jag.root") as f:
        f.mktree("t", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()})
        f["t"].extend(data)
    s = calobench.load(tmp_path / "jag.root", dataset="bes3-11x11",
                       branches={"energy": "e_gev*1000", "cell_index": "hit_id", "cell_energy": "hit_e*1000"})
    np.testing.assert_allclose(s.energies, gen.energies, rtol=1e-12)
    np.testing.assert_allclose(s.showers, gen.showers, rtol=1e-6)
    assert s.showers.shape == (N, 121)


def test_export_round_trip_point_cloud(tmp_path):
    ref = calobench.load("cepc").slice(0, 50)
    write_root(ref, tmp_path / "c.root", chunk_size=20)
    s = calobench.load(tmp_path / "c.root")  # dataset and tree from what export wrote
    assert s.dataset == "cepc" and s.particle == ref.particle
    assert np.array_equal(s.showers.offsets, ref.showers.offsets)
    assert np.array_equal(s.showers.cells, ref.showers.cells)
    assert np.array_equal(s.conditions["theta"], ref.conditions["theta"])


def test_export_cli_sparse_round_trip(tmp_path, bes3):
    gen, _ = bes3
    save(gen, tmp_path / "g.h5")
    assert main(["export", str(tmp_path / "g.h5"), "--to", "root", "-o", str(tmp_path / "g.root"), "--sparse"]) == 0
    assert "cell_index" in uproot.open(tmp_path / "g.root")["showers"].keys()
    assert np.array_equal(calobench.load(tmp_path / "g.root").showers, gen.showers)


@pytest.mark.parametrize("extra, needles", [
    (["--tree", "nope"], ["sim.root", "tree 'nope'", "bes3"]),
    (["--tree", "bes3", "--branch", "energy=missing_e"], ["sim.root", "tree 'bes3'", "branch 'missing_e'",
                                                          "--branch energy="]),
    (["--tree", "bes3", "--branch", "energy=mc_e*"], ["tree 'bes3'", "branch 'mc_e*'", "bad expression"]),
    (["--tree", "bes3", "--branch", "cells=mc_px"], ["branch 'mc_px'", "121"]),
    (["--tree", "bes3", "--branch", "energy"], ["--branch", "ROLE=EXPRESSION"]),
])
def test_bad_tree_branch_expression_one_line_exit_2(tmp_path, bes3, cli, extra, needles):
    gen, _ = bes3
    _bes3_tree(tmp_path / "sim.root", gen)
    mapping = {k: v for k, v in BES3_BRANCHES.items()}
    for item in extra:
        if "=" in item:
            mapping.pop(item.split("=")[0], None)
    result = cli("inspect", str(tmp_path / "sim.root"), "--dataset", "bes3-11x11", *_branch_args(mapping), *extra)
    assert_user_error(result, *needles)


def test_root_file_without_dataset_names_the_option(tmp_path, bes3):
    _bes3_tree(tmp_path / "sim.root", bes3[0])
    with pytest.raises(CalobenchError, match="--dataset"):
        calobench.load(tmp_path / "sim.root", tree="bes3", branches=BES3_BRANCHES)
