"""The one training loop of the learned models: epochs, checkpoints, resume, progress, best epoch.

A model's ``fit`` prepares its tensors and optimisers, then hands the loop to
``Trainer(model, optimizers, ...).run(epochs, epoch_batches, step, ...)``, supplying:

- ``epoch_batches(epoch)``: the batches of one epoch (0-based), in the model's own random order;
  also the place for what the model sets per epoch (seeds, learning rate, network modes);
- ``step(batch)``: one optimisation step, returning its losses as {name: float};
- optionally ``end_epoch(epoch)``: validation or monitoring values {name: value} for the record;
- optionally ``pretrain()``: run once before the first epoch (not when resuming), e.g. a
  regressor trained first; what it returns is kept as ``history["pretrain"]``.

Per epoch the Trainer puts every network in training mode, runs the steps, writes the epoch's
record, keeps the best epoch (``monitor``: the record key to minimise; ``keep_best``: networks
whose weights of that epoch are restored at the end), writes a checkpoint into
``checkpoint_dir`` and calls ``model.on_epoch_end``. With ``resume`` it first restores the
checkpoint found there, so training ends with the weights of an uninterrupted run, provided
every random number comes from ``model.rng``, torch's global stream (both checkpointed) or
streams seeded per epoch in ``epoch_batches``.

The checkpoint (``checkpoint.pt``, written and read by models/base.save_checkpoint /
load_checkpoint: tensors, numbers, strings, lists and dicts only, never arbitrary pickle) holds the
model and dataset names, the networks, optimisers, LR schedulers, ``model.extra``, both random
streams, the history and the best epoch's score and weights.

Returned history (JSON-able): ``epochs`` (epochs completed), ``per_epoch`` (one record per
epoch: ``epoch`` (1-based), the mean over the epoch's steps of each loss, then the values of
``end_epoch``), ``seconds`` (training time, summed over resumed runs), ``pretrain`` (with a
pretrain hook) and ``best_epoch`` (with ``monitor``; 0 before any epoch).
Progress: one rich progress bar on stderr, advancing per step, showing the last epoch's record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from calobench.errors import CalobenchError
from calobench.models.base import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from calobench.models.torch_base import TorchGenerator


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator,
                     drop_last: bool = False) -> list[torch.Tensor]:
    """One epoch of index batches: a permutation of range(n) drawn from ``generator`` cut into
    batches of ``batch_size`` (the last one shorter, or left out with ``drop_last``)."""
    order = torch.randperm(n, generator=generator)
    stop = n - batch_size + 1 if drop_last else n
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


class Trainer:
    """Runs the epochs of one TorchGenerator (see the module docstring)."""

    def __init__(self, model: TorchGenerator, optimizers: dict[str, torch.optim.Optimizer], *,
                 schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] | None = None,
                 checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                 monitor: str | None = None, keep_best: Sequence[str] = ()) -> None:
        self.model = model
        self.optimizers = optimizers
        self.schedulers = schedulers or {}
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.resume = resume
        self.progress = progress
        self.monitor = monitor
        self.keep_best = tuple(keep_best)
        self.best_score = math.inf
        self.best_weights: dict[str, dict[str, torch.Tensor]] = {}

    def run(self, epochs: int, epoch_batches: Callable[[int], Sequence[Any]],
            step: Callable[[Any], dict[str, float]], *, end_epoch: Callable[[int], dict] | None = None,
            pretrain: Callable[[], dict] | None = None) -> dict:
        """Train up to ``epochs`` epochs in all; returns the history."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        mark = time.perf_counter()
        history: dict[str, Any] = {"epochs": 0, "per_epoch": [], "seconds": 0.0}
        if self.monitor is not None:
            history["best_epoch"] = 0
        state = load_checkpoint(self.checkpoint_dir) if self.resume and self.checkpoint_dir is not None else None
        if state is not None:
            history = self._restore(state)
        elif pretrain is not None:
            history["pretrain"] = pretrain()
        networks = self.model.networks()
        bar = Progress(TextColumn(f"[bold]{self.model.name}[/] training"), BarColumn(),
                       TextColumn("epoch {task.fields[epoch]}/{task.total:.0f}"), TextColumn("{task.fields[info]}"),
                       TimeRemainingColumn(), console=Console(stderr=True), disable=not self.progress)
        with bar:
            task = bar.add_task("", total=epochs, completed=history["epochs"], epoch=history["epochs"], info="")
            for epoch in range(history["epochs"], epochs):
                for net in networks.values():
                    net.train()
                batches = epoch_batches(epoch)
                sums: dict[str, float] = {}
                counts: dict[str, int] = {}
                for i, batch in enumerate(batches):
                    for key, value in step(batch).items():
                        sums[key] = sums.get(key, 0.0) + value
                        counts[key] = counts.get(key, 0) + 1
                    bar.update(task, completed=epoch + (i + 1) / len(batches))
                record = {"epoch": epoch + 1, **{key: sums[key] / counts[key] for key in sums}}
                if end_epoch is not None:
                    record.update(end_epoch(epoch))
                self._keep_if_best(record, history)
                history["per_epoch"].append(record)
                history["epochs"] = epoch + 1
                now = time.perf_counter()
                history["seconds"] += now - mark
                mark = now
                if self.checkpoint_dir is not None:
                    save_checkpoint(self.checkpoint_dir, self._state(history))
                bar.update(task, completed=epoch + 1, epoch=epoch + 1, info=_summary(record))
                self.model.on_epoch_end(epoch + 1, history)
        for net in networks.values():
            net.eval()
        if self.best_weights:
            for name in self.keep_best:
                networks[name].load_state_dict(self.best_weights[name])
        return history

    def _keep_if_best(self, record: dict, history: dict) -> None:
        if self.monitor is None or not record[self.monitor] < self.best_score:
            return
        self.best_score = float(record[self.monitor])
        history["best_epoch"] = record["epoch"]
        networks = self.model.networks()
        self.best_weights = {name: {k: v.detach().cpu().clone() for k, v in networks[name].state_dict().items()}
                             for name in self.keep_best}

    def _state(self, history: dict) -> dict:
        model = self.model
        return {
            "model": model.name, "dataset": model.dataset.name, "epoch": history["epochs"], "history": history,
            "networks": {name: {k: v.detach().cpu() for k, v in net.state_dict().items()}
                         for name, net in model.networks().items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in self.schedulers.items()},
            "extra": {k: torch.from_numpy(np.array(v)) for k, v in model.extra.items()},
            "rng": model.rng.get_state(), "torch_rng": torch.get_rng_state(),
            "best_score": self.best_score, "best_weights": self.best_weights,
        }

    def _restore(self, state: dict) -> dict:
        model = self.model
        if state.get("model") != model.name or state.get("dataset") != model.dataset.name:
            raise CalobenchError(f"{self.checkpoint_dir / CHECKPOINT_FILE}: checkpoint of {state.get('model')} on "
                                 f"{state.get('dataset')}, expected {model.name} on {model.dataset.name}")
        for name, net in model.networks().items():
            net.load_state_dict(state["networks"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        model.extra = {k: v.numpy() for k, v in state["extra"].items()}
        model.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        model.after_load()
        self.best_score = float(state["best_score"])
        self.best_weights = state["best_weights"]
        return state["history"]


def _summary(record: dict) -> str:
    """The first three numbers of an epoch record after its epoch number, for the progress bar."""
    numbers = [(k, v) for k, v in record.items() if k != "epoch" and isinstance(v, float)]
    return " ".join(f"{k} {v:.4g}" for k, v in numbers[:3])
