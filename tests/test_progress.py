"""Progress: bars on a terminal; without one, one line per stage (calobench.progress)."""

from __future__ import annotations

import io

import pytest

import calobench
from calobench.data.showerfile import save
from calobench.progress import stage


def test_without_a_terminal_one_line_per_stage_whatever_the_steps(capsys):
    with stage("fit", total=100, terminal=False) as bar:
        for _ in range(100):
            bar.advance(loss="0.5")
    with stage("detail", total=10, terminal=False, line=False) as bar:
        bar.advance(10)
    with stage("off", total=10, terminal=False, enabled=False) as bar:
        bar.advance(10)
    assert capsys.readouterr().err.splitlines() == ["fit"]


def test_lines_go_through_the_log_when_given():
    lines: list[str] = []
    with stage("features", total=3, terminal=False, log=lines.append) as bar:
        bar.advance(3)
    assert lines == ["features"]


def test_on_a_terminal_a_bar_with_count_and_status(monkeypatch):
    from rich.console import Console

    import calobench.progress as progress

    buffer = io.StringIO()
    monkeypatch.setattr(progress, "_console", lambda: Console(file=buffer, force_terminal=True, width=120))
    with stage("gflash fit", total=4, terminal=True) as outer:
        with stage("inner", total=2, terminal=True) as inner:  # nested: the same display
            inner.advance(2)
        outer.advance(4, step="done")
    text = buffer.getvalue()
    assert "gflash fit" in text and "4/4" in text and "step done" in text and "inner" in text
    assert progress._active["progress"] is None  # the display is stopped after the outer stage


@pytest.mark.parametrize("protocol", ["challenge", "v2"])
def test_compare_without_a_terminal_writes_one_line_per_stage(tmp_path, cli, protocol):
    ref = calobench.load("stcf11x11")
    save(ref.slice(0, 600), tmp_path / "g.h5")
    save(ref.slice(600, 1200), tmp_path / "r.h5")
    result = cli("compare", str(tmp_path / "g.h5"), str(tmp_path / "r.h5"), "--metrics", "hist,cls-high",
                 "--repeats", "2", "--cls-protocol", protocol, "--cls-hidden", "16",
                 *(["--cls-epochs", "6"] if protocol == "challenge" else ["--cls-max-steps", "300"]))
    assert result.returncode == 0, result.stderr
    lines = [line.split("] ", 1)[1] for line in result.stderr.splitlines()]
    # the default read: 16 MB of float32 showers (34663 events of 121 cells) rounded down to the
    # files' HDF5 chunks
    assert lines == ["spectra: reference (binning)", "features: generated (600 events, chunks of 33792)",
                     "features: reference (600 events, chunks of 33792)", "metrics: 3 stages",
                     "cls-high: run 1/2", "cls-high: run 2/2", "cls-high: floor (reference halves)", "done"]


def test_gflash_fit_one_line_without_a_terminal(capsys):
    from calobench.baselines.parametric.gflash import GFlash

    ref = calobench.load("stcf11x11").slice(0, 300)
    model = GFlash("stcf11x11", "tiny")
    model.fit(ref, progress=True)
    err = capsys.readouterr().err.splitlines()
    assert err == ["gflash fit: stcf11x11 (300 showers)"]
    model.fit(ref, progress=False)
    assert capsys.readouterr().err == ""
