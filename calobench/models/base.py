"""The Generator plugin interface every model implements.

A model is trained on a ShowerSet with ``fit`` and produces showers for given incident
energies and conditions with ``sample``. Saved models are a folder holding
``config.json`` and ``weights.safetensors`` (no pickle: loading cannot execute code).
Training checkpoints for ``--resume`` are torch state dicts loaded with
``weights_only=True`` (see ``save_checkpoint`` / ``load_checkpoint``).
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from calobench.data.validation import check_conditions, check_energies
from calobench.datasets import Dataset, dataset_names, get_dataset
from calobench.errors import CalobenchError
from calobench.data.showerset import ShowerSet

FAMILIES = ("gan", "vae", "flow", "diffusion", "autoregressive", "parametric")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.pt"


class Generator(ABC):
    """Base class of every model plugin.

    Class attributes a plugin sets:
      name: registry name, e.g. ``"dcgan"``.
      family: one of FAMILIES.
      seed_document: the seed it comes from (``"001"``) or ``""``.
      datasets: names of the datasets it supports (or override ``supports`` to answer from
        the dataset itself, e.g. every voxel geometry).
      presets: preset name -> config dict; ``tiny`` (tests, seconds), ``quick`` (minutes on a
        laptop CPU) and ``full`` (GPU) at least.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    seed_document: ClassVar[str] = ""
    datasets: ClassVar[tuple[str, ...]] = ()
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    description: ClassVar[str] = ""
    #: True when generation can run on an accelerator (cuda, mps); numpy models time on cpu only.
    accelerated: ClassVar[bool] = False

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        self.dataset: Dataset = get_dataset(dataset)
        if not self.supports(self.dataset):
            raise CalobenchError(f"model {self.name} does not support dataset {dataset!r}; it supports: "
                                 f"{', '.join(self.supported_datasets())}")
        if preset not in self.presets:
            raise CalobenchError(
                f"model {self.name}: unknown preset {preset!r} (--preset); valid presets: {', '.join(self.presets)}")
        self.preset = preset
        self.seed = int(seed)
        self.device = device
        self.config: dict[str, Any] = {**self.presets[preset], **overrides}
        #: Optional callable(epoch, history) run by ``on_epoch_end``; the runner uses it for
        #: progress, tests use it to interrupt training. Never saved.
        self.epoch_callback: Callable[[int, dict], None] | None = None

    @classmethod
    def supports(cls, dataset: Dataset) -> bool:
        """Whether the model can be built for ``dataset`` (default: its name is in ``datasets``)."""
        return dataset.name in cls.datasets

    @classmethod
    def supported_datasets(cls) -> tuple[str, ...]:
        """Names of the registered datasets the model supports: the declared ``datasets`` in their
        order, then the other registered datasets ``supports`` accepts, in registry order."""
        registered = dataset_names()
        declared = [name for name in cls.datasets if name in registered]
        return tuple(declared + [name for name in registered
                                 if name not in declared and cls.supports(get_dataset(name))])

    # ---- the plugin contract ---------------------------------------------------------
    @abstractmethod
    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        """Train on ``train`` (monitor on ``valid``). Returns a JSON-able training history.

        epochs: overrides the preset's number of epochs. checkpoint_dir: where to write
        periodic checkpoints; with resume=True training continues from the one found there
        and ends with the same weights as an uninterrupted run with the same seed.
        """

    @abstractmethod
    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        """Generate one shower per incident energy (MeV, shape (N,)) with the given conditions."""

    @abstractmethod
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything learned, as named float arrays (written to weights.safetensors)."""

    @abstractmethod
    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what ``state_arrays`` returned."""

    def parameter_count(self) -> int:
        """Number of trained parameters used for generation."""
        return int(sum(np.asarray(a).size for a in self.state_arrays().values()))

    def prepare(self, sample: ShowerSet) -> None:
        """Fit the data-derived constants (normalisation) without training, so that a freshly
        initialised model can ``sample`` (used by `calobench time`). Default: ``fit`` with 0 epochs;
        override when that is not cheap."""
        self.fit(sample, None, epochs=0, progress=False)

    def on_epoch_end(self, epoch: int, history: dict) -> None:
        """Call after each finished epoch (after writing its checkpoint); runs ``epoch_callback``.

        epoch: number of epochs completed so far (1-based).
        """
        if self.epoch_callback is not None:
            self.epoch_callback(epoch, history)

    def to(self, device: str) -> "Generator":
        """Move the model to a device (no-op for numpy models)."""
        self.device = device
        return self

    # ---- persistence -----------------------------------------------------------------
    def describe(self) -> dict:
        return {"model": self.name, "family": self.family, "dataset": self.dataset.name,
                "preset": self.preset, "seed": self.seed, "config": self.config}

    def save(self, directory: str | Path) -> Path:
        """Write config.json and weights.safetensors into ``directory`` (atomically per file)."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.ascontiguousarray(v) for k, v in self.state_arrays().items()}
        tmp = directory / f".{WEIGHTS_FILE}.partial-{os.getpid()}"
        save_file(arrays, str(tmp))
        os.replace(tmp, directory / WEIGHTS_FILE)
        write_json_atomic(directory / CONFIG_FILE, self.describe())
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu", overrides: dict[str, Any] | None = None) -> "Generator":
        """Rebuild a saved model. Reads only JSON and safetensors: no code is executed.
        ``overrides`` replace saved settings (e.g. {"sampling_precision": "bfloat16"}); a key that
        is neither in the saved config nor in the model's preset is refused."""
        if not isinstance(directory, (str, Path)):
            raise CalobenchError(f"model {cls.name}: load: expected a folder path, found {type(directory).__name__}")
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        info = _read_config(config_path, cls.name)
        config = dict(info["config"])
        known = set(config) | set(cls.presets.get(info["preset"], {}))  # older saves lack newer settings
        unknown = sorted(set(overrides or {}) - known)
        if unknown:
            raise CalobenchError(f"{config_path}: cannot set {', '.join(unknown)}: not a setting of the saved "
                                 f"model (its settings: {', '.join(sorted(known))})")
        config.update(overrides or {})
        check_setting_types(config, cls.presets.get(info["preset"], {}), f"{config_path}: key 'config.")
        try:
            model = cls(info["dataset"], info["preset"], info["seed"], device, **config)
        except CalobenchError as exc:  # a dataset, preset or config value the model refuses
            raise CalobenchError(f"{config_path}: {exc}") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
            raise CalobenchError(f"{config_path}: key 'config': a setting the model cannot use "
                                 f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
        weights = directory / WEIGHTS_FILE
        arrays = _read_weights(weights)
        expected = model.state_arrays()
        missing = [key for key in expected if key not in arrays]
        if missing:
            raise CalobenchError(f"{weights}: key '{missing[0]}': missing"
                                 + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        try:
            model.load_state_arrays(arrays)
        except CalobenchError as exc:
            raise CalobenchError(f"{weights}: {exc}") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
            raise CalobenchError(f"{weights}: weights do not fit the model "
                                 f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
        return model


#: config.json keys and their types (seed: an integer, not a bool).
_CONFIG_KEYS = {"model": str, "dataset": str, "preset": str, "seed": int, "config": dict}


def _read_config(path: Path, model: str) -> dict:
    """The config.json of a saved ``model`` as a dict with the keys of _CONFIG_KEYS; a
    CalobenchError naming the file and key otherwise."""
    if not path.is_file():
        raise CalobenchError(f"{path}: no such file (not a saved calobench model)")
    try:
        info = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise CalobenchError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CalobenchError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise CalobenchError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise CalobenchError(f"{path}: expected a JSON object, found {type(info).__name__}")
    if info.get("model") != model:
        raise CalobenchError(f"{path}: key 'model': expected {model}, found {info.get('model')}")
    info = {"seed": 0, "config": {}, **info}
    for key, kind in _CONFIG_KEYS.items():
        if key not in info:
            raise CalobenchError(f"{path}: key '{key}': missing")
        value = info[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CalobenchError(f"{path}: key '{key}': expected {'an object' if kind is dict else kind.__name__}, "
                                 f"found {type(value).__name__}")
    return info


def check_setting_types(config: dict[str, Any], preset: dict[str, Any], what: str = "--set ") -> None:
    """Every setting has the type of the preset's value (an integer also passes for a number;
    a preset value of None accepts anything). ``what`` prefixes the key in the message."""
    for key, value in config.items():
        default = preset.get(key)
        if default is None or value is None:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(default, (list, tuple)):
            ok = isinstance(value, (list, tuple))
        else:
            ok = isinstance(value, type(default))
        if not ok:
            quote = "'" if what.endswith("'config.") else ""
            raise CalobenchError(f"{what}{key}{quote}: expected {type(default).__name__} like the "
                                 f"preset's {default!r}, found {type(value).__name__} {value!r}")


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a weights.safetensors file, every value finite; a CalobenchError naming the
    file (and key) otherwise."""
    from safetensors.numpy import load_file

    if not path.is_file():
        raise CalobenchError(f"{path}: no such file")
    try:
        arrays = load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError (and OSError) on a bad file
        raise CalobenchError(f"{path}: not a readable safetensors file "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
    for key, value in arrays.items():
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise CalobenchError(f"{path}: key '{key}': non-finite weights (NaN or infinity)")
    return arrays


def sample_inputs(energies: np.ndarray, conditions: dict[str, np.ndarray] | None
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The arguments of ``Generator.sample`` as flat arrays: energies (N,) float64 MeV, conditions {name: (N,)}.

    Raises CalobenchError for a non-finite or non-positive energy or a condition of another length
    or with non-finite values (calobench.data.validation).
    """
    energies = check_energies(energies, "sample")
    return energies, check_conditions(conditions, len(energies), "sample")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def save_checkpoint(directory: str | Path, state: dict) -> Path:
    """Write a training checkpoint (tensors, numbers, strings, lists, dicts only) atomically."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILE
    tmp = directory / f".{CHECKPOINT_FILE}.partial-{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(directory: str | Path) -> dict | None:
    """Read the checkpoint in ``directory`` with ``weights_only=True`` (never unpickles objects)."""
    import torch

    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError for anything but plain data
        raise CalobenchError(f"{path}: not a safe calobench checkpoint ({type(exc).__name__})") from None
