"""Leaderboard: one file per entry, strict schema, migration, curated vs yours, ranking, CLI."""

from __future__ import annotations

import copy
import io
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from calobench.cli import main
from calobench.errors import CalobenchError
from calobench.leaderboard import (add_entry, benchmark_version, curated_dir, default_user_dir, failure, make_entry,
                                   migrate_directory, published_rows, rank, read_entries, read_leaderboard, schema,
                                   score, table, user_dir, validate_directory, validate_entry, validation_errors)
from calobench.leaderboard.store import STALE_S, TEMP_DIR, sweep_temp

REPO = Path(__file__).resolve().parents[1]
DATASET = "stcf11x11"


def _entry(model: str = "dcgan", auc: float = 0.7, fpd: float = 0.01, seed: int = 0, auc_low: float = 0.5,
           **kw) -> dict:
    metrics = {"auc_high": {"value": auc, "std": 0.01}, "auc_low": {"value": auc_low, "std": 0.01},
               "fpd": {"value": fpd, "std": 0.001},
               "sep_etot_einc": {"value": 0.05, "std": 0.002, "floor": 0.001}}
    timing = {"geant4_ms_per_event": 30.0, "model_state": "trained", "devices": {"cpu": {
        "device_name": "test cpu", "threads": 2,
        "batches": {"1": {"ms_per_shower": 0.5, "std": 0.1, "repeats": 5, "warmup": 1, "speedup_vs_geant4": 60.0}}}}}
    return make_entry(model=model, family=kw.get("family", "gan"), seed_document="001", preset="quick",
                      parameters=1234, dataset=DATASET, metrics=metrics, timing=timing, seed=seed,
                      config={"epochs": 3, "model": model})


def _one_line_cli_error(capsys, status: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# ---- storage -------------------------------------------------------------------------
def test_entry_is_one_file_and_round_trips(tmp_path):
    entry = _entry()
    validate_entry(entry)
    path = add_entry(tmp_path, DATASET, entry)
    assert path == tmp_path / DATASET / f"{entry['id']}.json"
    assert json.loads(path.read_text()) == entry
    assert read_leaderboard(tmp_path, DATASET)["entries"] == [entry]
    assert entry["schema_version"] == "2.0" and entry["dataset"] == DATASET
    assert entry["benchmark_version"] == benchmark_version(DATASET) and entry["provenance"]["config_hash"]
    assert entry["id"].startswith("dcgan-quick-seed0-")
    assert list((tmp_path / DATASET / TEMP_DIR).iterdir()) == []  # no temporary file left
    assert read_entries(tmp_path, "cepc") == []  # a dataset without entries


def test_same_id_is_never_replaced(tmp_path):
    entry = _entry(auc=0.8)
    path = add_entry(tmp_path, DATASET, entry)
    changed = {**entry, "parameters": 1}
    with pytest.raises(CalobenchError, match="exists already"):
        add_entry(tmp_path, DATASET, changed)
    assert json.loads(path.read_text())["parameters"] == 1234


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e.pop("model"), "'model' is a required property"),
    (lambda e: e["metrics"]["auc_high"].update(value="high"), "metrics.auc_high.value: 'high' is not of type"),
    (lambda e: e.update(family="magic"), "family: 'magic' is not one of"),
    (lambda e: e["timing"]["devices"]["cpu"]["batches"]["1"].update(ms_per_shower=-1.0),
     "ms_per_shower: -1.0 is less than or equal to the minimum of 0"),
    (lambda e: e["provenance"].pop("git_commit"), "'git_commit' is a required property"),
    (lambda e: e.update(extra_field=1), "Additional properties are not allowed ('extra_field'"),
    (lambda e: e["provenance"].update(date="yesterday"), "provenance.date: 'yesterday' is not a 'date-time'"),
    (lambda e: e["provenance"].update(date="2026-13-45T00:00:00+00:00"), "is not a 'date-time'"),
    (lambda e: e["metrics"]["fpd"].update(value=float("nan")), "metrics.fpd.value: number is not finite"),
    (lambda e: e["timing"].update(geant4_ms_per_event=float("inf")), "timing.geant4_ms_per_event: number is not"),
    (lambda e: e.update(schema_version="1.0"), "schema_version: '2.0' was expected"),
])
def test_malformed_entry_is_rejected_with_clear_message(tmp_path, mutate, message):
    entry = _entry()
    mutate(entry)
    with pytest.raises(CalobenchError) as info:
        add_entry(tmp_path, DATASET, entry)
    text = str(info.value)
    assert text.startswith("invalid leaderboard entry: ") and message in text and "\n" not in text
    assert not (tmp_path / DATASET).exists()  # nothing half-written


def _writer(directory: str, worker: int, count: int) -> None:
    for i in range(count):
        add_entry(directory, DATASET, _entry(model=f"m{worker}", seed=i))


def test_two_concurrent_writer_processes_lose_no_entry(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 12)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    entries = read_entries(tmp_path, DATASET)
    assert len(entries) == 24
    assert {(e["model"], e["provenance"]["seed"]) for e in entries} == {(f"m{w}", i) for w in range(2) for i in range(12)}
    assert list((tmp_path / DATASET / TEMP_DIR).iterdir()) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_files_are_ignored_and_swept(tmp_path):
    add_entry(tmp_path, DATASET, _entry(seed=1))
    temp = tmp_path / DATASET / TEMP_DIR
    dead = temp / f"x-seed0.{_dead_pid()}.00000000.tmp"
    live = temp / f"y-seed0.{os.getppid()}.00000000.tmp"  # the test runner's parent: alive
    old = temp / f"z-seed0.{os.getppid()}.11111111.tmp"
    for path in (dead, live, old):
        path.write_text('{"half": ')
    os.utime(old, (time.time() - STALE_S - 10,) * 2)
    (tmp_path / DATASET / ".hidden.json").write_text("{")
    assert len(read_entries(tmp_path, DATASET)) == 1  # readers ignore them
    add_entry(tmp_path, DATASET, _entry(seed=2))  # the next writer sweeps
    assert sorted(p.name for p in temp.iterdir()) == [live.name]
    assert sweep_temp(temp, now=time.time() + STALE_S + 1) == 1  # once old enough, even a live pid's file goes


def test_old_layout_is_refused_with_migrate_hint(tmp_path, capsys):
    (tmp_path / f"{DATASET}.json").write_text(json.dumps({"schema_version": "1.0", "dataset": DATASET, "entries": []}))
    with pytest.raises(CalobenchError, match="old leaderboard layout.*calobench leaderboard migrate"):
        read_entries(tmp_path, DATASET)
    with pytest.raises(CalobenchError, match="migrate"):
        add_entry(tmp_path, DATASET, _entry())
    _one_line_cli_error(capsys, main(["leaderboard", "show", DATASET, "--leaderboard-dir", str(tmp_path)]), "migrate")


def test_migration_round_trip(tmp_path, capsys):
    entries = [_entry(seed=s) for s in range(3)]
    old = [{k: v for k, v in e.items() if k not in ("schema_version", "dataset")} for e in entries]
    (tmp_path / f"{DATASET}.json").write_text(json.dumps({"schema_version": "1.0", "dataset": DATASET, "entries": old}))
    (tmp_path / "cepc.json").write_text(json.dumps({"schema_version": "1.0", "dataset": "cepc", "entries": []}))
    assert main(["leaderboard", "migrate", "--leaderboard-dir", str(tmp_path)]) == 0
    assert "3 entries" in capsys.readouterr().out
    assert not (tmp_path / f"{DATASET}.json").exists() and not (tmp_path / "cepc.json").exists()
    back = sorted(read_entries(tmp_path, DATASET), key=lambda e: e["provenance"]["seed"])
    assert back == entries
    assert migrate_directory(tmp_path) == {}  # a second run has nothing to do
    assert main(["leaderboard", "validate", "--leaderboard-dir", str(tmp_path)]) == 0


def test_migration_refuses_a_bad_old_entry_and_writes_nothing(tmp_path):
    bad = {k: v for k, v in _entry().items() if k not in ("schema_version", "dataset")}
    bad["provenance"]["date"] = "yesterday"
    (tmp_path / f"{DATASET}.json").write_text(json.dumps({"schema_version": "1.0", "dataset": DATASET,
                                                          "entries": [bad]}))
    with pytest.raises(CalobenchError, match=r"stcf11x11.json: entries\[0\].provenance.date"):
        migrate_directory(tmp_path)
    assert (tmp_path / f"{DATASET}.json").exists() and not (tmp_path / DATASET).exists()


# ---- strict reading ------------------------------------------------------------------
def _write_entry_text(folder: Path, text: str | bytes, name: str | None = None) -> Path:
    entry = _entry()
    path = folder / DATASET / f"{name or entry['id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text.replace("@ID@", entry["id"]))
    return path


def _entry_text(mutate) -> str:
    entry = _entry()
    entry["id"] = "@ID@"
    mutate(entry)
    return json.dumps(entry)


BAD_FILES = {
    "nan-literal": (lambda: _entry_text(lambda e: None).replace('"value": 0.7', '"value": NaN'), "NaN literal"),
    "infinity-literal": (lambda: _entry_text(lambda e: None).replace('"value": 0.7', '"value": -Infinity'),
                         "-Infinity literal"),
    "overflowing-number": (lambda: _entry_text(lambda e: None).replace('"value": 0.7', '"value": 1e400'),
                           "1e400 is not finite"),
    "bad-date": (lambda: _entry_text(lambda e: e["provenance"].update(date="yesterday")),
                 "provenance.date: 'yesterday' is not a 'date-time'"),
    "unknown-key": (lambda: _entry_text(lambda e: e.update(comment="hi")), "Additional properties are not allowed"),
    "wrong-dataset": (lambda: _entry_text(lambda e: e.update(dataset="cepc")), "dataset: is 'cepc' but the file"),
    "not-utf8": (lambda: b'{"id": "\xff\xfe"}', "not UTF-8 text"),
    "not-json": (lambda: "{", "not valid JSON"),
    "not-object": (lambda: "[1, 2]", "is not of type 'object'"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_entry_file_is_one_line_error(tmp_path, kind, capsys):
    make, needle = BAD_FILES[kind]
    path = _write_entry_text(tmp_path, make())
    with pytest.raises(CalobenchError) as info:
        read_entries(tmp_path, DATASET)
    text = str(info.value)
    assert text.startswith(str(path)) and needle in text and "\n" not in text, text
    _one_line_cli_error(capsys, main(["leaderboard", "show", DATASET, "--leaderboard-dir", str(tmp_path)]),
                        str(path), needle)
    _one_line_cli_error(capsys, main(["leaderboard", "validate", "--leaderboard-dir", str(tmp_path)]),
                        str(path), needle)


def test_entry_file_that_is_a_folder(tmp_path, capsys):
    (tmp_path / DATASET / "x.json").mkdir(parents=True)
    with pytest.raises(CalobenchError, match="x.json: is a folder, expected a JSON file"):
        read_entries(tmp_path, DATASET)
    _one_line_cli_error(capsys, main(["leaderboard", "validate", "--leaderboard-dir", str(tmp_path)]), "is a folder")


def test_dataset_folder_that_is_a_file(tmp_path, capsys):
    (tmp_path / DATASET).write_text("")
    _one_line_cli_error(capsys, main(["leaderboard", "show", DATASET, "--leaderboard-dir", str(tmp_path)]),
                        "is a file, expected a folder")


# ---- ranking -------------------------------------------------------------------------
def test_ranking_by_auc_distance_and_versions():
    good, bad, under, tie = _entry("a", auc=0.55), _entry("b", auc=0.95), _entry("c", auc=0.42), _entry("d", auc=0.55, fpd=0.5)
    old = _entry("e", auc=0.5)
    old["benchmark_version"] = "stcf11x11/data-v0/metrics-v1"
    nothing = _entry("f")
    nothing["metrics"].pop("auc_high")
    ranked, others = rank([bad, tie, old, under, good, nothing], benchmark_version(DATASET))
    assert [(r, e["model"]) for r, e in ranked] == [(1, "a"), (2, "d"), (3, "c"), (4, "b"), (None, "f")]
    assert [e["model"] for e in others] == ["e"]


def test_ranking_v2_worst_view_floors_and_failures():
    sharp = _entry("sharp", auc=0.52, auc_low=0.99)
    balanced = _entry("balanced", auc=0.6, auc_low=0.6)
    assert [e["model"] for _, e in rank([sharp, balanced], benchmark_version(DATASET))[0]] == ["balanced", "sharp"]
    assert score(sharp) == pytest.approx(0.49) and score(balanced) == pytest.approx(0.1)
    floored = _entry("floored", auc=0.53, auc_low=0.48, fpd=0.02)
    floored["metrics"]["auc_high"]["floor"] = 0.46
    floored["metrics"]["auc_low"]["floor"] = 0.52
    floored["metrics"]["fpd"]["floor"] = 0.015
    exact = _entry("exact", auc=0.5, auc_low=0.5, fpd=0.01)
    assert score(floored) == 0.0
    ranked, _ = rank([exact, floored], benchmark_version(DATASET))
    assert [e["model"] for _, e in ranked] == ["floored", "exact"]
    failed = _entry("failed", auc=0.5, auc_low=0.5)
    failed["metrics"]["auc_low"] = {"value": None, "std": None, "failed": "training loss not finite at step 3"}
    validate_entry(failed)
    ranked, _ = rank([balanced, failed], benchmark_version(DATASET))
    assert [(r, e["model"]) for r, e in ranked] == [(1, "balanced"), (None, "failed")]
    assert failure(failed) == "auc_low failed: training loss not finite at step 3"


def test_published_calochallenge_rows():
    rows = published_rows("calochallenge-2")
    names = [r["model"] for r in rows]
    assert "GEANT4" in names and "CaloDiffusion" in names and len(rows) == 18
    geant4 = rows[names.index("GEANT4")]
    assert geant4["metrics"]["auc_high"]["value"] == pytest.approx(0.49927)
    assert geant4["metrics"]["fpd"]["value"] == pytest.approx(10.776e-3)
    assert published_rows(DATASET) == []


# ---- DataFrame, curated vs yours -----------------------------------------------------
def test_table_dataframe_curated_and_yours(tmp_path):
    add_entry(tmp_path, DATASET, _entry("dcgan", auc=0.6))
    add_entry(tmp_path, DATASET, _entry("mean-shower", auc=0.99, auc_low=0.99, family="parametric"))
    frame = table(DATASET, user_dir=tmp_path)
    curated = len(read_entries(curated_dir(), DATASET))
    assert curated > 0 and len(frame) == curated + 2
    assert frame["source"].value_counts().to_dict() == {"curated": curated, "yours": 2}
    mine = frame[frame["source"] == "yours"]
    # ranked together with the curated rows of the same benchmark version: dcgan (0.6) first of all,
    # mean-shower (0.99) below it
    ranks = list(mine["rank"])
    assert list(mine["model"]) == ["dcgan", "mean-shower"] and ranks[0] == 1 and ranks[1] > ranks[0]
    assert mine.iloc[0]["auc_high"] == 0.6 and mine.iloc[0]["auc_high_std"] == 0.01
    assert mine.iloc[0]["ms_cpu_bs1"] == 0.5 and mine.iloc[0]["threads_cpu"] == 2
    assert mine.iloc[0]["sep_etot_einc_floor"] == 0.001
    assert (frame.loc[frame["source"] == "curated", "current"] == frame.loc[frame["source"] == "curated",
            "benchmark_version"].eq(benchmark_version(DATASET))).all()
    only_mine = table(DATASET, user_dir=tmp_path, curated=False)
    assert list(only_mine["source"]) == ["yours", "yours"]


def test_reruns_are_all_kept_and_only_the_newest_ranked(tmp_path):
    first = _entry(auc=0.8)
    first["provenance"]["date"] = "2026-01-01T00:00:00+00:00"
    add_entry(tmp_path, DATASET, first)
    second = _entry(auc=0.7)
    add_entry(tmp_path, DATASET, second)
    add_entry(tmp_path, DATASET, _entry(auc=0.75, seed=1))
    assert len(read_entries(tmp_path, DATASET)) == 3  # nothing replaced
    frame = table(DATASET, user_dir=tmp_path, curated=False).set_index("id")
    assert frame.loc[first["id"], "latest"] == False  # noqa: E712 (numpy bool)
    assert pd.isna(frame.loc[first["id"], "rank"]) and "superseded" in frame.loc[first["id"], "unranked"]
    assert frame.loc[second["id"], "rank"] == 1 and frame.loc[second["id"], "latest"] == True  # noqa: E712


def test_show_cli_formats(tmp_path, capsys):
    add_entry(tmp_path, DATASET, _entry("dcgan", auc=0.6))
    add_entry(tmp_path, DATASET, _entry("mean-shower", auc=0.99, auc_low=0.99, family="parametric"))
    args = ["leaderboard", "show", DATASET, "--leaderboard-dir", str(tmp_path)]
    assert main([*args, "--no-curated", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(r["rank"], r["model"], r["source"]) for r in shown["ranked"]] == [(1, "dcgan", "yours"),
                                                                               (2, "mean-shower", "yours")]
    assert main([*args, "--format", "csv"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert set(frame["source"]) == {"curated", "yours"} and "auc_high" in frame.columns
    assert main([*args, "--format", "markdown", "--no-curated"]) == 0
    md = capsys.readouterr().out
    assert "| 1 | yours | dcgan | gan |" in md and "0.5 (2 thr)" in md
    assert main([*args, "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert "yours" in out and "curated" in out and "…" not in out
    assert main(["leaderboard", "show", "nope", "--leaderboard-dir", str(tmp_path)]) == 2
    assert main(["leaderboard", "show", "calochallenge-2", "--leaderboard-dir", str(tmp_path)]) == 0
    assert "CaloChallenge 2022 published" in capsys.readouterr().out


def test_piped_show_is_never_truncated_and_same_from_any_folder(tmp_path, cli):
    add_entry(user_dir(), DATASET, _entry("a-model-with-a-really-long-name-for-the-table", auc=0.6))
    results = []
    for cwd in (REPO, tmp_path):
        proc = subprocess.run([sys.executable, "-m", "calobench", "leaderboard", "show", DATASET], cwd=cwd,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        results.append(proc.stdout)
    assert results[0] == results[1]
    assert "a-model-with-a-really-long-name-for-the-table" in results[0] and "…" not in results[0]
    assert "curated" in results[0] and "yours" in results[0]
    csv = subprocess.run(f"{sys.executable} -m calobench leaderboard show {DATASET} --format csv | {sys.executable} "
                         "-c \"import pandas,sys; print(pandas.read_csv(sys.stdin).shape)\"", shell=True, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert csv.returncode == 0 and csv.stdout.startswith(f"({len(read_entries(curated_dir(), DATASET)) + 1}, ")


def test_validate_cli(tmp_path, capsys):
    path = add_entry(tmp_path, DATASET, _entry())
    assert main(["leaderboard", "validate", "--leaderboard-dir", str(tmp_path)]) == 0
    broken = json.loads(path.read_text())
    broken["parameters"] = -5
    path.write_text(json.dumps(broken))
    (tmp_path / "darkshine").mkdir()
    (tmp_path / "darkshine" / "x.json").write_text("{not json")
    capsys.readouterr()
    assert main(["leaderboard", "validate", "--leaderboard-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: parameters: -5 is less than the minimum of 0" in err
    assert "darkshine/x.json: not valid JSON (line 1" in err
    # without --leaderboard-dir: the curated leaderboard and yours (the conftest's folder)
    assert main(["leaderboard", "validate"]) == 0
    assert "curated leaderboard" in capsys.readouterr().out


def test_submit_copies_an_entry_into_a_checkout(tmp_path, capsys):
    entry = _entry()
    run_copy = tmp_path / "run" / "entry.json"  # as `calobench run` leaves it in the run folder
    run_copy.parent.mkdir()
    run_copy.write_text(json.dumps(entry))
    checkout = tmp_path / "checkout"
    (checkout / "leaderboards").mkdir(parents=True)
    assert main(["leaderboard", "submit", str(run_copy), "--to", str(checkout)]) == 0
    target = checkout / "leaderboards" / DATASET / f"{entry['id']}.json"
    assert json.loads(target.read_text()) == entry and "pull request" in capsys.readouterr().out
    assert main(["leaderboard", "validate", "--leaderboard-dir", str(checkout / "leaderboards")]) == 0
    capsys.readouterr()
    _one_line_cli_error(capsys, main(["leaderboard", "submit", str(run_copy), "--to", str(checkout)]), "exists already")
    _one_line_cli_error(capsys, main(["leaderboard", "submit", str(run_copy), "--to", str(tmp_path / "run")]),
                        "not a calobench checkout")
    bad = copy.deepcopy(entry)
    bad["provenance"]["date"] = "yesterday"
    run_copy.write_text(json.dumps(bad))
    _one_line_cli_error(capsys, main(["leaderboard", "submit", str(run_copy), "--to", str(checkout)]),
                        "provenance.date")


# ---- locations -----------------------------------------------------------------------
def test_user_folder_default_and_override(tmp_path, monkeypatch, private_leaderboard_dir):
    assert user_dir() == private_leaderboard_dir  # conftest: tests never write the real folder
    monkeypatch.setenv("CALOBENCH_LEADERBOARD_DIR", str(tmp_path / "mine"))
    assert user_dir() == tmp_path / "mine"
    monkeypatch.delenv("CALOBENCH_LEADERBOARD_DIR")
    default = default_user_dir().resolve()
    assert user_dir().resolve() == default and default.name == "leaderboards" and "calobench" in default.parts
    package = (REPO / "calobench").resolve()
    assert package not in default.parents and REPO.resolve() not in default.parents


def test_committed_curated_leaderboard_is_valid():
    folder = REPO / "leaderboards"
    assert curated_dir() == folder
    assert json.loads((folder / "schema.json").read_text()) == schema()
    report = validate_directory(folder)
    assert all(not problems for problems in report.values()), report
    assert sum(1 for name in report if "/" in name) >= 28
    assert not list(folder.glob("*.json*")) or [p.name for p in folder.glob("*.json")] == ["schema.json"]


def test_setup_py_ships_the_curated_leaderboard(tmp_path):
    """The wheel's build step copies leaderboards/<dataset>/*.json into calobench/leaderboard/curated/,
    where an installed calobench finds it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("calobench_setup", REPO / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    copied = module.copy_curated(tmp_path)
    target = tmp_path / "calobench" / "leaderboard" / "curated"
    assert (target / "schema.json") in copied
    assert {p.relative_to(target) for p in copied} == \
        {p.relative_to(REPO / "leaderboards") for p in (REPO / "leaderboards").rglob("*.json")
         if not any(part.startswith(".") for part in p.relative_to(REPO / "leaderboards").parts)}
    assert validate_directory(target) and all(not v for v in validate_directory(target).values())


@pytest.mark.parametrize("metric", [
    {"value": 1, "std": 2}, {"value": None, "std": None, "floor": 0.5, "within_floor": True},
    {"value": None, "std": None, "failed": "x"}, {"value": True, "std": None}, {"value": 0.1},
    {"value": 0.1, "std": 0.1, "extra": 1}, {"value": 0.1, "std": 0.1, "failed": ""},
    {"value": 0.1, "std": 0.1, "within_floor": 1}, {"value": "0.1", "std": 0.1}, {"value": [0.1], "std": 0.1},
    {"value": 0.1, "std": False}, {"value": 0.1, "std": 0.1, "floor": {}}, [0.1], "0.1", None,
])
def test_fast_metric_check_agrees_with_the_schema(metric):
    """validation_errors skips jsonschema for metrics that the fast check accepts: it must accept
    exactly what the schema's metric definition accepts."""
    import jsonschema

    from calobench.leaderboard.store import METRIC_SCHEMA, _metric_is_valid

    assert schema()["$defs"]["metric"] == METRIC_SCHEMA  # else the fast path is off
    by_schema = jsonschema.Draft202012Validator({"$defs": schema()["$defs"], "$ref": "#/$defs/metric"}).is_valid(metric)
    assert _metric_is_valid(metric) == by_schema
    entry = _entry()
    entry["metrics"]["probe"] = metric
    assert (not validation_errors(entry)) == by_schema
