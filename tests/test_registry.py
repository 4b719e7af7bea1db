"""Model registry: entry-point discovery, broken plugins, name errors, `calobench models`."""

from __future__ import annotations

import sys
import textwrap

import pytest

from calobench.cli import main
from calobench.errors import CalobenchError
from calobench.models import registry
from calobench.models.base import Generator

PLUGIN = '''
import numpy as np
from calobench.models.base import Generator
from calobench.data.showerset import ShowerSet

class ToyModel(Generator):
    name = "toy-plugin"
    family = "parametric"
    datasets = ("stcf11x11",)
    presets = {"tiny": {}, "quick": {}, "full": {}}

    def fit(self, train, valid=None, *, epochs=None, checkpoint_dir=None, resume=False, progress=True):
        self.scale = np.array([float(np.mean(train.total_energy() / train.energies))])
        return {}

    def sample(self, energies, conditions=None, batch_size=10000):
        g = self.dataset.geometry
        showers = np.zeros((len(energies), g.n_cells), np.float32)
        showers[:, g.n_cells // 2] = np.asarray(energies) * self.scale[0]
        return ShowerSet(g, energies, showers, conditions, dataset=self.dataset.name)

    def state_arrays(self):
        return {"scale": self.scale}

    def load_state_arrays(self, arrays):
        self.scale = arrays["scale"]
'''


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A package 'toyplug' and a dist-info folder declaring two entry points (one broken)."""
    (tmp_path / "toyplug").mkdir()
    (tmp_path / "toyplug" / "__init__.py").write_text(PLUGIN)
    dist = tmp_path / "toyplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [calobench.models]
        toy-plugin = toyplug:ToyModel
        broken-plugin = toyplug_does_not_exist.model:Nothing
        wrong-plugin = toyplug:PLUGIN_NOT_A_CLASS
        """))
    (tmp_path / "toyplug" / "__init__.py").write_text(PLUGIN + "\nPLUGIN_NOT_A_CLASS = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    monkeypatch.undo()
    sys.modules.pop("toyplug", None)
    registry.discover(refresh=True, warn=False)


def test_builtin_models_are_registered():
    models, _ = registry.discover(refresh=True, warn=False)
    assert {"dcgan", "mean-shower"} <= set(models)
    assert all(issubclass(c, Generator) for c in models.values())
    assert registry.get_model("dcgan").family == "gan"
    assert "mean-shower" in registry.models_for_dataset("stcf11x11")


def test_plugin_discovered_through_entry_point(plugin_path, capsys):
    models, problems = registry.discover(refresh=True)
    assert "toy-plugin" in models
    assert models["toy-plugin"].__module__ == "toyplug"
    broken = {p.name: p for p in problems}
    assert "import failed" in broken["broken-plugin"].reason
    assert "not a calobench Generator" in broken["wrong-plugin"].reason
    err = capsys.readouterr().err.strip().splitlines()
    assert any("broken-plugin" in line and "skipped" in line for line in err)
    # the plugin works like a built-in one
    import calobench

    ref = calobench.load("stcf11x11").slice(0, 50)
    model = models["toy-plugin"]("stcf11x11", "tiny")
    model.fit(ref)
    out = model.sample(ref.energies, ref.conditions)
    assert out.showers.shape == (50, 121)
    assert model.parameter_count() == 1
    # the CLI keeps working and lists it; a broken plugin gives a clear error when asked for
    assert main(["models"]) == 0
    assert "toy-plugin" in capsys.readouterr().out
    with pytest.raises(CalobenchError, match="broken-plugin.*could not be loaded"):
        registry.get_model("broken-plugin")


def test_unknown_model_lists_valid_names():
    with pytest.raises(CalobenchError, match="unknown model 'nope'; valid names: .*dcgan"):
        registry.get_model("nope")


@pytest.mark.parametrize("argv, message", [
    (["run", "--model", "nope", "--dataset", "stcf11x11"], "unknown model 'nope'; valid names:"),
    (["run", "--model", "dcgan", "--dataset", "nope"], "unknown dataset 'nope'; valid names:"),
    (["run", "--model", "dcgan", "--dataset", "darkshine"], "does not support dataset 'darkshine'; it supports:"),
    (["time", "--model", "nope", "--dataset", "stcf11x11"], "unknown model 'nope'"),
])
def test_cli_name_errors_exit_2(argv, message, capsys, tmp_path):
    assert main(argv + ([] if argv[0] == "time" else ["--out", str(tmp_path / "r")])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_models_json_lists_families_and_presets(capsys):
    import json

    assert main(["models", "--json"]) == 0
    info = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert info["dcgan"]["seed_document"] == "001"
    assert {"tiny", "quick", "full"} <= set(info["mean-shower"]["presets"])
    assert info["mean-shower"]["family"] == "parametric"
