"""Leaderboard: schema validation, atomic concurrent writes, ranking, published rows, CLI."""

from __future__ import annotations

import copy
import json
import multiprocessing
from pathlib import Path

import pytest

from calobench.cli import main
from calobench.errors import CalobenchError
from calobench.leaderboard import (add_entry, benchmark_version, failure, make_entry, published_rows, rank,
                                   read_leaderboard, schema, score, validate_directory, validate_entry,
                                   validation_errors)

REPO = Path(__file__).resolve().parents[1]


def _entry(model: str = "dcgan", auc: float = 0.7, fpd: float = 0.01, seed: int = 0, auc_low: float = 0.5,
           **kw) -> dict:
    metrics = {"auc_high": {"value": auc, "std": 0.01}, "auc_low": {"value": auc_low, "std": 0.01},
               "fpd": {"value": fpd, "std": 0.001},
               "sep_etot_einc": {"value": 0.05, "std": 0.002, "floor": 0.001}}
    timing = {"geant4_ms_per_event": 30.0, "model_state": "trained", "devices": {"cpu": {
        "device_name": "test cpu", "threads": 2,
        "batches": {"1": {"ms_per_shower": 0.5, "std": 0.1, "repeats": 5, "warmup": 1, "speedup_vs_geant4": 60.0}}}}}
    return make_entry(model=model, family=kw.get("family", "gan"), seed_document="001", preset="quick",
                      parameters=1234, dataset="stcf11x11", metrics=metrics, timing=timing, seed=seed,
                      config={"epochs": 3, "model": model})


def test_valid_entry_passes_and_file_round_trips(tmp_path):
    entry = _entry()
    validate_entry(entry)
    path = add_entry(tmp_path, "stcf11x11", entry)
    data = json.loads(path.read_text())
    assert data["entries"] == [entry]
    assert not validation_errors(data)
    assert (tmp_path / "schema.json").read_text() == (REPO / "calobench/leaderboard/schema.json").read_text()
    assert entry["benchmark_version"] == benchmark_version("stcf11x11")


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e.pop("model"), "'model' is a required property"),
    (lambda e: e["metrics"]["auc_high"].update(value="high"), "metrics.auc_high.value: 'high' is not of type"),
    (lambda e: e.update(family="magic"), "family: 'magic' is not one of"),
    (lambda e: e["timing"]["devices"]["cpu"]["batches"]["1"].update(ms_per_shower=-1.0),
     "ms_per_shower: -1.0 is less than or equal to the minimum of 0"),
    (lambda e: e["provenance"].pop("git_commit"), "'git_commit' is a required property"),
    (lambda e: e.update(extra_field=1), "Additional properties are not allowed ('extra_field'"),
])
def test_malformed_entry_is_rejected_with_clear_message(tmp_path, mutate, message):
    entry = _entry()
    mutate(entry)
    with pytest.raises(CalobenchError) as info:
        add_entry(tmp_path, "stcf11x11", entry)
    text = str(info.value)
    assert text.startswith("invalid leaderboard entry: ") and message in text and "\n" not in text
    assert not (tmp_path / "stcf11x11.json").exists()  # nothing half-written


def _writer(directory: str, worker: int, count: int) -> None:
    for i in range(count):
        add_entry(directory, "stcf11x11", _entry(model=f"m{worker}", seed=i))


def test_two_concurrent_writer_processes_lose_no_entry(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 12)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    data = read_leaderboard(tmp_path, "stcf11x11")
    assert len(data["entries"]) == 24
    assert {(e["model"], e["provenance"]["seed"]) for e in data["entries"]} == \
        {(f"m{w}", i) for w in range(2) for i in range(12)}
    assert not list(tmp_path.glob(".*partial*"))


def test_rerun_replaces_same_configuration(tmp_path):
    add_entry(tmp_path, "stcf11x11", _entry(auc=0.8))
    add_entry(tmp_path, "stcf11x11", _entry(auc=0.7))
    add_entry(tmp_path, "stcf11x11", _entry(auc=0.7, seed=1))
    entries = read_leaderboard(tmp_path, "stcf11x11")["entries"]
    assert sorted((e["provenance"]["seed"], e["metrics"]["auc_high"]["value"]) for e in entries) == [(0, 0.7), (1, 0.7)]


def test_ranking_by_auc_distance_and_versions():
    good, bad, under, tie = _entry("a", auc=0.55), _entry("b", auc=0.95), _entry("c", auc=0.42), _entry("d", auc=0.55, fpd=0.5)
    old = _entry("e", auc=0.5)
    old["benchmark_version"] = "stcf11x11/data-v0/metrics-v1"
    nothing = _entry("f")
    nothing["metrics"].pop("auc_high")
    ranked, others = rank([bad, tie, old, under, good, nothing], benchmark_version("stcf11x11"))
    assert [(r, e["model"]) for r, e in ranked] == [(1, "a"), (2, "d"), (3, "c"), (4, "b"), (None, "f")]
    assert [e["model"] for e in others] == ["e"]


def test_ranking_v2_worst_view_floors_and_failures():
    # the worse of the two classifiers ranks: perfect high level, blatant low level loses
    sharp = _entry("sharp", auc=0.52, auc_low=0.99)
    balanced = _entry("balanced", auc=0.6, auc_low=0.6)
    assert [e["model"] for _, e in rank([sharp, balanced], benchmark_version("stcf11x11"))[0]] == ["balanced", "sharp"]
    assert score(sharp) == pytest.approx(0.49) and score(balanced) == pytest.approx(0.1)
    # an AUC within what Geant4 reaches against itself costs nothing; the FPD excess breaks the tie
    floored = _entry("floored", auc=0.53, auc_low=0.48, fpd=0.02)
    floored["metrics"]["auc_high"]["floor"] = 0.46
    floored["metrics"]["auc_low"]["floor"] = 0.52
    floored["metrics"]["fpd"]["floor"] = 0.015
    exact = _entry("exact", auc=0.5, auc_low=0.5, fpd=0.01)
    assert score(floored) == 0.0
    ranked, _ = rank([exact, floored], benchmark_version("stcf11x11"))
    assert [e["model"] for _, e in ranked] == ["floored", "exact"]  # FPD excess 0.005 < 0.01
    # a failed classifier (value null, failed) is never ranked, even if the other view is perfect
    failed = _entry("failed", auc=0.5, auc_low=0.5)
    failed["metrics"]["auc_low"] = {"value": None, "std": None, "failed": "training loss not finite at step 3"}
    validate_entry(failed)
    ranked, _ = rank([balanced, failed], benchmark_version("stcf11x11"))
    assert [(r, e["model"]) for r, e in ranked] == [(1, "balanced"), (None, "failed")]
    assert failure(failed) == "auc_low failed: training loss not finite at step 3"


def test_published_calochallenge_rows():
    rows = published_rows("calochallenge-2")
    names = [r["model"] for r in rows]
    assert "GEANT4" in names and "CaloDiffusion" in names and len(rows) == 18
    geant4 = rows[names.index("GEANT4")]
    assert geant4["metrics"]["auc_high"]["value"] == pytest.approx(0.49927)
    assert geant4["metrics"]["fpd"]["value"] == pytest.approx(10.776e-3)  # published x1e3
    assert published_rows("stcf11x11") == []


def test_validate_cli(tmp_path, capsys):
    add_entry(tmp_path, "stcf11x11", _entry())
    assert main(["leaderboard", "validate", "--leaderboard-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "stcf11x11.json").read_text())
    broken = copy.deepcopy(data)
    broken["entries"][0]["parameters"] = -5
    broken["entries"].append(copy.deepcopy(data["entries"][0]))
    (tmp_path / "stcf11x11.json").write_text(json.dumps(broken))
    (tmp_path / "darkshine.json").write_text("{not json")
    capsys.readouterr()
    assert main(["leaderboard", "validate", "--leaderboard-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "stcf11x11.json: entries[0].parameters: -5 is less than the minimum of 0" in err
    assert "entries[1].id: duplicate id" in err
    assert "darkshine.json: not valid JSON (line 1" in err
    with pytest.raises(CalobenchError, match="stcf11x11.json: entries"):
        read_leaderboard(tmp_path, "stcf11x11")


def test_show_cli(tmp_path, capsys):
    add_entry(tmp_path, "stcf11x11", _entry("dcgan", auc=0.6))
    add_entry(tmp_path, "stcf11x11", _entry("mean-shower", auc=0.99, auc_low=0.99, family="parametric"))
    assert main(["leaderboard", "show", "stcf11x11", "--leaderboard-dir", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(r["rank"], r["model"]) for r in shown["ranked"]] == [(1, "dcgan"), (2, "mean-shower")]
    assert main(["leaderboard", "show", "nope", "--leaderboard-dir", str(tmp_path)]) == 2
    assert main(["leaderboard", "show", "calochallenge-2", "--leaderboard-dir", str(tmp_path)]) == 0
    assert "CaloChallenge 2022 published" in capsys.readouterr().out


def test_committed_leaderboards_are_valid():
    folder = REPO / "leaderboards"
    assert json.loads((folder / "schema.json").read_text()) == schema()
    report = validate_directory(folder)
    assert all(not problems for problems in report.values()), report
