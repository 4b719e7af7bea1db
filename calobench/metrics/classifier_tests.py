"""Classifier two-sample tests: the protocols (v2 and the CaloChallenge's), their inputs and options.

Both protocols take the same number of events from both samples, split them 60 / 20 / 20 into
train / test / validation, train a fully connected network (input -> hidden, ``n_layer`` x
(hidden -> hidden), LeakyReLU, -> 1 logit) with Adam and BCE-with-logits, calibrate its
probabilities with an isotonic regression fitted on the test split, and measure AUC and
JSD = (ln 2 - BCE) / ln 2 on the validation split. Labels: generated 0, reference 1. Every split,
shuffle and initialisation comes from ``seed``.

``protocol="v2"`` (the default, metrics-v2): training by a budget of optimiser steps (at least
``min_steps`` whatever the sample size, batches of a twentieth of the training events within
[32, 1000], Adam 1e-3, 256 hidden), early stopping on the held-out BCE with a patience in steps,
the best state kept; inputs that cannot break training: log10 of the cells over E_inc (low level),
energies relative to E_inc (high level), every column standardised and clipped to +-6; a
training-health record per run; a run that could not train is reported as failed (value null,
``failed`` naming the reason), never as 0.5.

``protocol="challenge"``: the CaloChallenge evaluate.py protocol exactly (2048 hidden, Adam 2e-4,
batch 1000, 50 epochs, the epoch with the best test accuracy, the challenge's inputs: cells / E_inc
and the raw high-level vector) for comparisons with published numbers.

Floors: the same test between the two halves of the reference (even and odd events) gives the
Geant4-against-Geant4 value at this sample size (``floor``, from one run).

Data are read block by block (``Source.read(start, stop)``) and turned into the network's
float32 inputs (standardised) once: when the inputs of all events used fit in ``cache_mb``
(512 MB; the high-level classifiers, the low-level one on small samples) they are kept as
contiguous tensors, batches are views of a shuffled copy of a block, and nothing is read or
standardised again; else (the low-level classifier on large samples) every pass reads them again
block by block, holding two blocks of showers at a time rather than the samples. The gradient-boosted variant (xgboost, hist method) uses the same
splits, early stopping on the test split, and the same calibration and validation.
The stages that run these tests are in calobench.metrics.classifiers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np

from calobench.errors import CalobenchError
from calobench.progress import Bar, log_enabled, stage

LN2 = float(np.log(2.0))


@dataclass
class Source:
    """n events whose inputs ``read(start, stop)`` returns as (stop - start, dim) float32."""

    n: int
    dim: int
    read: Callable[[int, int], np.ndarray]

    @staticmethod
    def of_array(x: np.ndarray) -> "Source":
        x = np.asarray(x, dtype=np.float32)
        return Source(len(x), x.shape[1], lambda a, b: x[a:b])


@dataclass
class ClassifierOptions:
    """protocol: "v2" or "challenge" (module docstring); hidden / n_layer: network size; lr: Adam
    learning rate; batch_size: mini-batch (None: v2's rule); block_events: events per read block
    of each sample (fewer, down to MIN_BLOCK_EVENTS, where a block would exceed BLOCK_BYTES); max_events: use at most this many events per sample; repeats: runs of each
    classifier stage; xgb_estimators: trees of cls-xgb at most; floors: also run each test once
    between the reference halves.
    challenge only: epochs (maximum), patience (epochs without a better test accuracy; None: never).
    v2 only: min_steps / max_steps: optimiser steps; eval_every: steps between held-out losses;
    patience_steps: steps after the best held-out loss before stopping; eval_events: held-out
    events kept in memory for early stopping, fewer where their inputs would exceed eval_mb MB; clip: standardised inputs clipped to +-clip.
    cache_mb: when the network inputs of all events used (float32) fit in this many MB they are
    read and transformed once and kept as tensors; else read block by block on every pass."""

    protocol: str = "v2"
    hidden: int = 256
    n_layer: int = 2
    lr: float = 1e-3
    batch_size: int | None = None
    block_events: int = 4096
    max_events: int | None = None
    repeats: int = 3
    xgb_estimators: int = 400
    floors: bool = True
    epochs: int = 50
    patience: int | None = 5
    min_steps: int = 300
    max_steps: int = 6000
    eval_every: int = 25
    patience_steps: int = 250
    eval_events: int = 20_000
    eval_mb: float = 512.0
    clip: float = 6.0
    cache_mb: float = 512.0

    @staticmethod
    def for_protocol(protocol: str, **overrides) -> "ClassifierOptions":
        """The options of a protocol with its defaults (PROTOCOLS), then ``overrides`` (None: default)."""
        if protocol not in PROTOCOLS:
            raise CalobenchError(f"classifier protocol {protocol!r}: valid protocols: {', '.join(PROTOCOLS)}")
        values = {**PROTOCOLS[protocol], **{k: v for k, v in overrides.items() if v is not None}}
        return ClassifierOptions(protocol=protocol, **values)


#: Defaults of each protocol (the rest are ClassifierOptions' defaults).
PROTOCOLS = {
    "v2": {"hidden": 256, "n_layer": 2, "lr": 1e-3, "batch_size": None},
    "challenge": {"hidden": 2048, "n_layer": 2, "lr": 2e-4, "batch_size": 1000, "epochs": 50, "patience": None},
}


def _split(n_src: int, n_use: int, rng: np.random.Generator) -> np.ndarray:
    """(n_src,) split label per event: 0 train, 1 test, 2 validation, -1 unused."""
    perm = rng.permutation(n_src)[:n_use]
    n_train, n_test = int(0.6 * n_use), int(0.2 * n_use)
    out = np.full(n_src, -1, dtype=np.int8)
    out[perm[:n_train]] = 0
    out[perm[n_train:n_train + n_test]] = 1
    out[perm[n_train + n_test:]] = 2
    return out


#: float32 bytes of one sample's read block at most (for inputs wider than 15 625 columns)
BLOCK_BYTES = 256e6
#: events of a read block at least
MIN_BLOCK_EVENTS = 2048


class _Blocks:
    """Paired blocks of the two samples and their split labels."""

    def __init__(self, gen: Source, ref: Source, seed: int, opts: ClassifierOptions) -> None:
        rng = np.random.default_rng([seed, 1])
        n_use = min(gen.n, ref.n)
        if opts.max_events:
            n_use = min(n_use, opts.max_events)
        self.gen, self.ref = gen, ref
        self.split_g, self.split_r = _split(gen.n, n_use, rng), _split(ref.n, n_use, rng)
        # wide inputs (dataset 3's 40 500 cells) get smaller blocks: at most BLOCK_BYTES of float32
        # per sample, but never under MIN_BLOCK_EVENTS (batches still drawn from many events)
        per_block = min(opts.block_events, max(MIN_BLOCK_EVENTS, int(BLOCK_BYTES // (4 * max(1, gen.dim)))))
        self.n_blocks = max(1, int(np.ceil(max(gen.n, ref.n) / per_block)))
        self.bg = int(np.ceil(gen.n / self.n_blocks))
        self.br = int(np.ceil(ref.n / self.n_blocks))
        self.n_use = n_use

    def read(self, k: int, split: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and labels of the events of block k in the given split."""
        xs, ys = [], []
        for src, labels, size, label in ((self.gen, self.split_g, self.bg, 0.0),
                                         (self.ref, self.split_r, self.br, 1.0)):
            lo, hi = k * size, min((k + 1) * size, src.n)
            if hi <= lo:
                continue
            mask = labels[lo:hi] == split
            if not mask.any():
                continue
            xs.append(src.read(lo, hi)[mask])
            ys.append(np.full(int(mask.sum()), label, dtype=np.float32))
        if not xs:
            return np.zeros((0, self.gen.dim), np.float32), np.zeros(0, np.float32)
        return np.concatenate(xs), np.concatenate(ys)


def _network(dim: int, opts: ClassifierOptions):
    import torch

    layers = [torch.nn.Linear(dim, opts.hidden), torch.nn.LeakyReLU()]
    for _ in range(opts.n_layer):
        layers += [torch.nn.Linear(opts.hidden, opts.hidden), torch.nn.LeakyReLU()]
    layers.append(torch.nn.Linear(opts.hidden, 1))
    return torch.nn.Sequential(*layers)


def _scores(y: np.ndarray, p: np.ndarray, calib_y: np.ndarray, calib_p: np.ndarray) -> dict[str, float]:
    """Calibrate p with an isotonic fit on (calib_p, calib_y); AUC and JSD of the result."""
    # scikit-learn costs ~1.5 s of CPU to import: only stages that train a classifier pay it
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score

    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1.0 - 1e-6).fit(calib_p, calib_y)
    q = iso.predict(p)
    bce = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
    return {"auc": float(roc_auc_score(y, q)), "jsd": float((LN2 - bce) / LN2)}


class _Inputs:
    """The network inputs of one split, block by block: ``block(k)`` -> (x (rows, dim) float32
    tensor, labels (rows,) float32 tensor), ``transform`` (a (rows, dim) float32 array -> its input
    tensor) applied to the rows of ``_Blocks.read``. With ``cache`` every block is read and
    transformed once and its tensors kept (contiguous, so batches are views); without, a block is
    read and transformed again at every ``block`` call."""

    def __init__(self, blocks: _Blocks, split: int, transform: Callable, cache: bool) -> None:
        self.blocks, self.split, self.transform = blocks, split, transform
        self.n_blocks = blocks.n_blocks
        self.cached = [self._load(k) for k in range(self.n_blocks)] if cache else None

    def _load(self, k: int):
        import torch

        x, y = self.blocks.read(k, self.split)
        return self.transform(x).contiguous(), torch.from_numpy(y)

    def block(self, k: int):
        return self.cached[k] if self.cached is not None else self._load(k)


def _split_inputs(blocks: _Blocks, transform: Callable, opts: "ClassifierOptions") -> list[_Inputs]:
    """The train, test and validation _Inputs, kept in memory when all of them fit in opts.cache_mb."""
    cache = 2 * blocks.n_use * blocks.gen.dim * 4 <= opts.cache_mb * 1e6
    return [_Inputs(blocks, split, transform, cache) for split in (0, 1, 2)]


def _shuffled(x, y, rng: np.random.Generator):
    """(x, y) rows in the order ``rng.permutation(len(x))`` (one index_select per tensor)."""
    import torch

    order = torch.from_numpy(rng.permutation(len(x)))
    return x.index_select(0, order), y.index_select(0, order)


def _adam(net, lr: float):
    """Adam at ``lr`` (torch's fused CPU kernel: the same update as the per-tensor loop in one pass)."""
    import torch

    return torch.optim.Adam(net.parameters(), lr=lr, fused=True)


def _predict(net, inputs: _Inputs) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of the events of one split, block by block, 8192 rows at a time."""
    import torch

    net.eval()
    ys, ps = [], []
    with torch.inference_mode():
        for k in range(inputs.n_blocks):
            x, y = inputs.block(k)
            for lo in range(0, len(x), 8192):
                ps.append(torch.sigmoid(net(x[lo:lo + 8192])).numpy().reshape(-1))
            ys.append(y.numpy())
    return np.concatenate(ys), np.concatenate(ps) if ps else np.zeros(0)


def dnn_test(gen: Source, ref: Source, seed: int, opts: ClassifierOptions,
             scale_columns: np.ndarray | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Train and evaluate one DNN classifier with ``opts.protocol``; returns auc, jsd, the events
    used and the protocol's training record (v2: ``failed``, steps, losses; challenge: best_epoch).

    scale_columns (challenge protocol only): boolean mask of input columns standardised with the
    mean / std of the training events of the first block (None: all columns); v2 standardises all.
    """
    if opts.protocol == "v2":
        return dnn_test_v2(gen, ref, seed, opts, progress)
    return _dnn_test_challenge(gen, ref, seed, opts, scale_columns, progress)


def _dnn_test_challenge(gen: Source, ref: Source, seed: int, opts: ClassifierOptions,
                        scale_columns: np.ndarray | None, progress: Callable[[str], None] | None) -> dict:
    """The CaloChallenge protocol: epochs, the best test accuracy kept."""
    import torch

    torch.manual_seed(seed)
    blocks = _Blocks(gen, ref, seed, opts)
    rng = np.random.default_rng([seed, 2])
    x0, _ = blocks.read(0, 0)
    mean = x0.mean(axis=0) if len(x0) else np.zeros(gen.dim, np.float32)
    std = x0.std(axis=0) if len(x0) else np.ones(gen.dim, np.float32)
    std[std < 1e-8] = 1.0
    if scale_columns is not None:
        mean = np.where(scale_columns, mean, 0.0).astype(np.float32)
        std = np.where(scale_columns, std, 1.0).astype(np.float32)
    mean_t, std_t = torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))
    net = _network(gen.dim, opts)
    optim = _adam(net, opts.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    train, test, val = _split_inputs(blocks, lambda x: (torch.from_numpy(x) - mean_t) / std_t, opts)

    with stage("classifier epochs", total=opts.epochs, enabled=log_enabled(progress), line=False) as bar:
        best_epoch = _challenge_epochs(net, optim, loss_fn, train, test, rng, opts, bar)
    y_test, p_test = _predict(net, test)
    y_val, p_val = _predict(net, val)
    out = _scores(y_val, p_val, y_test, p_test)
    out.update(best_epoch=best_epoch, events=blocks.n_use, failed=None)
    return out


def _challenge_epochs(net, optim, loss_fn, train: _Inputs, test: _Inputs, rng: np.random.Generator,
                      opts: ClassifierOptions, bar: Bar) -> int:
    """The challenge protocol's epochs (the best test-accuracy state loaded into ``net``) -> best epoch."""
    best_acc, best_state, best_epoch, stale = -1.0, None, 0, 0
    batch = opts.batch_size
    for epoch in range(opts.epochs):
        net.train()
        for k in rng.permutation(train.n_blocks):
            x, y = _shuffled(*train.block(int(k)), rng)
            for lo in range(0, len(x), batch):
                loss = loss_fn(net(x[lo:lo + batch]).reshape(-1), y[lo:lo + batch])
                optim.zero_grad()
                loss.backward()
                optim.step()
        y_test, p_test = _predict(net, test)
        acc = float(np.mean((p_test > 0.5) == (y_test > 0.5)))
        if acc > best_acc:
            best_acc, best_state, best_epoch, stale = acc, copy.deepcopy(net.state_dict()), epoch + 1, 0
        else:
            stale += 1
        bar.advance(test_accuracy=f"{acc:.4f}", best=f"{best_acc:.4f}")
        if acc == 1.0 or (opts.patience is not None and stale >= opts.patience):
            break
    net.load_state_dict(best_state)
    return best_epoch


def _v2_batch_size(n_train: int, opts: "ClassifierOptions") -> int:
    """v2 mini-batch: a twentieth of the training events, within [32, 1000] (small samples still
    make many steps per pass)."""
    return int(np.clip(n_train // 20, 32, 1000)) if opts.batch_size is None else int(opts.batch_size)


class _Standardiser:
    """Clipped standardisation: (x - mean) / std from the training events, non-finite values mapped
    to the clip bounds, the result clipped to [-clip, clip], so no input value can break training."""

    #: rows of at most this many float64 bytes are standardised in one piece; larger inputs (the
    #: cells of dataset 3: 40 500 columns) row block by row block, so that no float64 copy of a
    #: whole read block is made (the statistics then sum block by block: the same to rounding)
    PIECE_BYTES = 256e6

    def __init__(self, x: np.ndarray, clip: float) -> None:
        self.clip = clip
        rows = max(1, int(self.PIECE_BYTES // (8 * max(1, x.shape[1]))))
        if len(x) > rows:
            self._fit_by_pieces(x, rows)
            return
        x = np.asarray(x, dtype=np.float64)
        finite = np.isfinite(x)
        every_finite = bool(finite.all())  # the usual case: no masked copies (same values)
        count = np.maximum(finite.sum(axis=0), 1)
        self.mean = (x if every_finite else np.where(finite, x, 0.0)).sum(axis=0) / count
        deviation = np.subtract(x, self.mean)
        if not every_finite:
            deviation[~finite] = 0.0
        np.square(deviation, out=deviation)
        self.std = np.sqrt(deviation.sum(axis=0) / count)
        self.std[~(self.std > 1e-12)] = 1.0

    def _fit_by_pieces(self, x: np.ndarray, rows: int) -> None:
        """Mean and std over the finite values, ``rows`` rows at a time (two passes)."""
        d = x.shape[1]
        total, count = np.zeros(d), np.zeros(d)
        for lo in range(0, len(x), rows):
            piece = np.asarray(x[lo:lo + rows], dtype=np.float64)
            finite = np.isfinite(piece)
            total += np.where(finite, piece, 0.0).sum(axis=0)
            count += finite.sum(axis=0)
        count = np.maximum(count, 1)
        self.mean = total / count
        squares = np.zeros(d)
        for lo in range(0, len(x), rows):
            deviation = np.subtract(np.asarray(x[lo:lo + rows], dtype=np.float64), self.mean)
            deviation[~np.isfinite(deviation)] = 0.0
            np.square(deviation, out=deviation)
            squares += deviation.sum(axis=0)
        self.std = np.sqrt(squares / count)
        self.std[~(self.std > 1e-12)] = 1.0

    def __call__(self, x: np.ndarray):
        """(n, d) float32 tensor of the clipped standardised x, with one float64 temporary of at
        most PIECE_BYTES (element by element: the same values in one piece or several)."""
        import torch

        out = np.empty(np.shape(x), dtype=np.float32)
        rows = max(1, int(self.PIECE_BYTES // (8 * max(1, out.shape[1] if out.ndim == 2 else 1))))
        for lo in range(0, max(len(out), 1), rows):
            z = np.subtract(np.asarray(x[lo:lo + rows], dtype=np.float64), self.mean)
            z /= self.std
            np.nan_to_num(z, copy=False, nan=0.0, posinf=self.clip, neginf=-self.clip)
            np.clip(z, -self.clip, self.clip, out=z)
            out[lo:lo + rows] = z
        return torch.from_numpy(out)


def dnn_test_v2(gen: Source, ref: Source, seed: int, opts: "ClassifierOptions",
                progress: Callable[[str], None] | None = None) -> dict:
    """Protocol v2: train by a budget of optimiser steps with early stopping on the held-out loss.

    Same splits (60 / 20 / 20), network shape, isotonic calibration and validation scores as the
    challenge protocol; differences: every column clipped-standardised, Adam at ``opts.lr`` with
    batches of ``_v2_batch_size``, at least ``min_steps`` and at most ``max_steps`` steps, the test
    loss checked every ``eval_every`` steps on up to ``eval_events`` held-out events, training
    stopped ``patience_steps`` after its best value, that best state kept. Returns auc, jsd, the
    training-health record (steps, best_step, train_loss, test_loss, ln2) and ``failed`` (a reason
    string, or None).
    """
    import torch

    torch.manual_seed(seed)
    blocks = _Blocks(gen, ref, seed, opts)
    rng = np.random.default_rng([seed, 2])
    x0, _ = blocks.read(0, 0)
    scale = _Standardiser(x0, opts.clip)
    n_train = int(0.6 * blocks.n_use) * 2
    batch = _v2_batch_size(n_train, opts)
    net = _network(gen.dim, opts)
    optim = _adam(net, opts.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    train, test, val = _split_inputs(blocks, scale, opts)

    # the early-stopping subset of the test split, in memory: at most eval_events, and at most
    # eval_mb of inputs (dataset 3's cells: 40 500 floats per event, 3160 events in 512 MB)
    held_max = min(opts.eval_events, max(1, int(opts.eval_mb * 1e6 // (4 * max(1, gen.dim)))))
    held_x, held_y = [], []
    held_rows = 0
    for k in range(blocks.n_blocks):
        if held_rows >= held_max:
            break
        x, y = test.block(k)
        take = min(len(y), held_max - held_rows)
        held_x.append(x[:take].clone() if take < len(y) and test.cached is None else x[:take])
        held_y.append(y[:take])
        held_rows += take
    held_x, held_y = torch.cat(held_x), torch.cat(held_y)

    def batches():
        """Training mini-batches, the blocks visited in a new random order on every pass."""
        while True:
            for k in rng.permutation(train.n_blocks):
                x, y = _shuffled(*train.block(int(k)), rng)
                for lo in range(0, len(x), batch):
                    yield x[lo:lo + batch], y[lo:lo + batch]

    step, best_loss, best_step, best_state = 0, float("inf"), 0, copy.deepcopy(net.state_dict())
    recent: list[float] = []
    failed = None if n_train >= 2 and len(held_y) else "too few events to train and test"
    net.train()
    with stage("classifier steps", total=opts.max_steps, enabled=log_enabled(progress), line=False) as bar:
        for xb, yb in (batches() if failed is None else ()):
            loss = loss_fn(net(xb).reshape(-1), yb)
            value = float(loss.detach())
            if not np.isfinite(value):
                failed = f"training loss not finite at step {step + 1}"
                break
            optim.zero_grad()
            loss.backward()
            optim.step()
            step += 1
            recent.append(value)
            if step % opts.eval_every == 0:
                recent = recent[-opts.eval_every:]
                net.eval()
                with torch.inference_mode():
                    test_loss = float(loss_fn(net(held_x).reshape(-1), held_y))
                net.train()
                if test_loss < best_loss - 1e-4:
                    best_loss, best_step, best_state = test_loss, step, copy.deepcopy(net.state_dict())
                bar.advance(opts.eval_every, loss=f"{np.mean(recent):.3f}", held_out=f"{test_loss:.3f}",
                            best=f"{best_loss:.3f}")
            if step >= opts.max_steps or (step >= opts.min_steps and step - best_step >= opts.patience_steps):
                break
        bar.update(completed=step, total=step)
    health = {"steps": step, "best_step": best_step, "batch_size": batch,
              "train_loss": float(np.mean(recent[-opts.eval_every:])) if recent else float("nan"),
              "test_loss": best_loss, "ln2": LN2}
    if failed is None and not np.isfinite(best_loss):
        failed = "held-out loss never finite"
    if failed is not None:
        return {"auc": float("nan"), "jsd": float("nan"), "failed": failed, "events": blocks.n_use, **health}
    net.load_state_dict(best_state)
    y_test, p_test = _predict(net, test)
    y_val, p_val = _predict(net, val)
    if not (np.all(np.isfinite(p_test)) and np.all(np.isfinite(p_val))):
        return {"auc": float("nan"), "jsd": float("nan"), "failed": "predictions not finite",
                "events": blocks.n_use, **health}
    out = _scores(y_val, p_val, y_test, p_test)
    out.update(failed=None, events=blocks.n_use, **health)
    return out


def xgb_test(gen: np.ndarray, ref: np.ndarray, seed: int, opts: ClassifierOptions, n_jobs: int = 2) -> dict:
    """Gradient-boosted trees (xgboost) on in-memory high-level vectors; same splits, calibration and
    validation (v2: the inputs clipped-standardised as the DNN's, so no value can break the fit)."""
    import xgboost

    block_opts = ClassifierOptions(max_events=opts.max_events, block_events=max(len(gen), len(ref)))
    blocks = _Blocks(Source.of_array(gen), Source.of_array(ref), seed, block_opts)
    # each split is standardised as soon as it is read, so one float64 split is held at a time
    xtr, ytr = blocks.read(0, 0)
    scale = _Standardiser(xtr, opts.clip) if opts.protocol == "v2" else None

    def prepared(x: np.ndarray) -> np.ndarray:
        return scale(x).numpy() if scale is not None else x

    xtr = prepared(xtr)
    xte, yte = blocks.read(0, 1)
    xte = prepared(xte)
    xva, yva = blocks.read(0, 2)
    xva = prepared(xva)
    if min(len(ytr), len(yte), len(yva)) < 2:
        return {"auc": float("nan"), "jsd": float("nan"), "failed": "too few events to train and test",
                "events": blocks.n_use}
    model = xgboost.XGBClassifier(n_estimators=opts.xgb_estimators, learning_rate=0.1, max_depth=6,
                                  tree_method="hist", random_state=seed, n_jobs=n_jobs,
                                  early_stopping_rounds=20, eval_metric="logloss")
    model.fit(xtr, ytr, eval_set=[(xte, yte)], verbose=False)
    p_test = model.predict_proba(xte)[:, 1]
    p_val = model.predict_proba(xva)[:, 1]
    if not (np.all(np.isfinite(p_test)) and np.all(np.isfinite(p_val))):
        return {"auc": float("nan"), "jsd": float("nan"), "failed": "predictions not finite", "events": blocks.n_use}
    out = _scores(yva, p_val, yte, p_test)
    out.update(best_epoch=int(model.best_iteration) + 1, events=blocks.n_use, failed=None)
    return out


# ---- inputs ----------------------------------------------------------------------------------
#: v2 low-level input: cells below this fraction of E_inc (empty cells included) sit at its log10.
LOW_LEVEL_FLOOR = 1e-6


def v2_low_level(x: np.ndarray, n_cells: int) -> np.ndarray:
    """v2 low-level input from ``FeatureExtractor.low_level`` rows (log10 E_inc, cells / E_inc,
    conditions): the cell columns become log10(max(cell / E_inc, 1e-6))."""
    out = np.array(x, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        out[:, 1:1 + n_cells] = np.log10(np.maximum(out[:, 1:1 + n_cells], LOW_LEVEL_FLOOR))
    return out


def v2_high_level(x: np.ndarray, names: list[str], in_place: bool = False) -> np.ndarray:
    """v2 high-level input: layer energies and E_tot relative to E_inc (log10 E / E_inc), and
    log10(E_tot / E_inc) where the vector lacks it; ``names`` are the columns of ``x``. in_place:
    x (float64) may be overwritten (no copy of the sample)."""
    out = np.asarray(x, dtype=np.float64) if in_place else np.array(x, dtype=np.float64)
    log_einc = out[:, names.index("log10_einc")]
    relative = [j for j, n in enumerate(names) if n.startswith("log10_e_layer_")]
    if "log10_etot_einc" not in names and "log10_etot" in names:
        out = np.concatenate([out, (out[:, names.index("log10_etot")] - log_einc)[:, None]], axis=1)
        relative.append(names.index("log10_etot"))
    out[:, relative] -= log_einc[:, None]
    return out
