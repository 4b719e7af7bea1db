"""Every metric name a real compare produces has a direction and a description (the catalogue);
Result.to_pandas and Timing.to_pandas; the stage-grouped result table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import calobench
from calobench import CalobenchError
from calobench.metrics.catalogue import DIRECTIONS, describe, lookup
from calobench.metrics.evaluate import STAGES
from calobench.metrics.result import Result

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Small, every stage: the classifiers take a few steps, FPD/KPD and PRDC tiny batches.
SMALL = {"repeats": 1, "cls_min_steps": 30, "cls_max_steps": 30, "cls_hidden": 8, "xgb_estimators": 3,
         "replicas": 2, "fpd_min_samples": 40, "kpd_batch_size": 20, "prdc_max_events": 60, "progress": False}


@pytest.fixture(scope="module", params=[("stcf11x11", 100), ("calochallenge-2", 100), ("cepc", 80)],
                ids=lambda p: p[0])
def real_result(request) -> Result:
    """compare of the two halves of an embedded reference sample, every stage."""
    dataset, n = request.param
    ref = calobench.load(dataset)
    return calobench.compare(ref.take(np.arange(n // 2)), ref.take(np.arange(n // 2, n)), dataset=dataset, **SMALL)


def test_every_metric_of_a_real_compare_is_described(real_result):
    stages = {info.stage for info in map(lookup, real_result.metrics) if info}
    assert stages == set(STAGES), stages  # every stage ran, so every family of names is covered
    missing = [name for name in real_result.metrics if lookup(name) is None]
    assert missing == [], f"metrics without a catalogue entry: {missing}"
    for name in real_result.metrics:
        info = real_result.explain(name)
        assert info.direction in DIRECTIONS and info.description and info.source, name
        assert info.stage in STAGES, name


def test_result_to_pandas(real_result):
    frame = real_result.to_pandas()
    assert list(frame.columns[:8]) == ["name", "value", "std", "floor", "within_floor", "direction", "stage",
                                       "description"]
    assert len(frame) == len(real_result.metrics) and set(frame["name"]) == set(real_result.metrics)
    row = frame.set_index("name").loc["auc_high"]
    assert row["direction"] == "closer to 0.5" and row["stage"] == "cls-high"
    assert row["value"] == pytest.approx(real_result.value("auc_high"))
    assert frame["value"].dtype == np.float64 and frame["within_floor"].dtype == "boolean"
    assert frame["description"].notna().all()
    # grouped by stage in evaluation order
    order = [STAGES.index(s) for s in frame["stage"]]
    assert order == sorted(order)


def test_table_groups_by_stage_and_shows_direction(real_result):
    console = Console(file=None, width=200, record=True)
    console.print(real_result.table(full=True))
    text = console.export_text()
    assert "better" in text and "closer to 0.5" in text
    for stage in STAGES:
        assert f" {stage} " in text, stage
    assert text.index(" hist ") < text.index(" resolution ") < text.index(" cls-low ")


def test_lookup_patterns_and_unknown_names():
    assert describe("sep_ec_eta_12").description.startswith("separation power")
    assert "layer 12" in describe("sep_ec_eta_12").description
    assert describe("resolution_b_diff").direction == "closer to 0"
    assert describe("resolution_a_gen").direction.startswith("none")
    assert describe("jsd_high").stage == "cls-high" and describe("js_etot").stage == "hist"
    assert describe("density").direction == "closer to 1"
    for name in ("sep_unknown_feature", "auc_medium", "fpd2", ""):
        assert lookup(name) is None, name
    with pytest.raises(CalobenchError, match="calobench metrics"):
        describe("auc_medium")
    result = Result()
    result.add("fpd", 1.0)
    with pytest.raises(CalobenchError, match="not in this result"):
        result.explain("kpd")


def test_to_pandas_of_a_failed_and_an_unknown_metric():
    result = Result()
    result.add("auc_low", float("nan"), failed="loss not finite")
    result.add("my_new_metric", 2.0, 0.1, floor=2.05)
    frame = result.to_pandas().set_index("name")
    assert frame.loc["auc_low", "failed"] == "loss not finite" and math.isnan(frame.loc["auc_low", "value"])
    assert frame.loc["my_new_metric", "floor"] == 2.05 and bool(frame.loc["my_new_metric", "within_floor"])
    assert pd.isna(frame.loc["my_new_metric", "direction"])
    assert frame.index[-1] == "my_new_metric"  # unknown stage last


TIMING = {"geant4_ms_per_event": 4.0, "model_state": "fresh", "devices": {
    "cpu": {"device_name": "Some CPU", "threads": 1, "batches": {
        "1": {"ms_per_shower": 2.0, "std": 0.1, "repeats": 5, "warmup": 1, "speedup_vs_geant4": 2.0},
        "10000": {"skipped": "one call estimated at 300 s (> 120 s limit)", "estimated_s": 300.0}}},
    "cuda": {"device_name": "Some GPU", "threads": None, "batches": {
        "100": {"ms_per_shower": 0.01, "std": 0.001, "repeats": 5, "warmup": 1, "speedup_vs_geant4": 400.0,
                "median": 0.0098}}}}}


def test_timing_to_pandas():
    frame = calobench.Timing(TIMING).to_pandas()
    assert list(frame["device"]) == ["cpu", "cpu", "cuda"] and list(frame["batch_size"]) == [1, 10000, 100]
    assert frame["ms_per_shower"].iloc[0] == 2.0 and math.isnan(frame["ms_per_shower"].iloc[1])
    assert frame["showers_per_s"].iloc[0] == 500.0 and frame["speedup_vs_geant4"].iloc[2] == 400.0
    assert frame["skipped"].iloc[1].startswith("one call") and frame["estimated_s"].iloc[1] == 300.0
    assert frame["median"].iloc[2] == 0.0098  # keys added to the timing object become columns
    assert (frame["geant4_ms_per_event"] == 4.0).all() and frame["threads"].iloc[0] == 1
    with pytest.raises(CalobenchError, match="devices"):
        calobench.Timing({"timing": 1})
