"""The classifier stages ``cls-high``, ``cls-xgb``, ``cls-low``: two-sample tests after the
CaloChallenge protocol, seeded and streamed.

Protocol (evaluate.py of the CaloChallenge): the same number of events is taken from both
samples and split 60 / 20 / 20 into train / test / validation; a fully connected network
(input -> hidden, ``n_layer`` x (hidden -> hidden), LeakyReLU, -> 1 logit) is trained with
Adam and BCE-with-logits in mini-batches; the epoch with the best accuracy on the test split
is kept; an isotonic regression fitted on the test predictions calibrates the probabilities;
AUC and JSD = (ln 2 - BCE) / ln 2 are measured on the validation split. Labels: generated 0,
reference 1. Every split, shuffle and initialisation comes from ``seed``.

Data are read block by block (``Source.read(start, stop)``), so the low-level classifier holds
two blocks of showers at a time rather than the samples; the high-level classifiers hold the
high-level feature vectors. The gradient-boosted variant (xgboost, hist method) uses the same
splits, early stopping on the test split, and the same calibration and validation.
Each stage repeats its test ``repeats`` times (seeds seed, seed + 1, ...): value = mean, std = std.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from calobench.data.geometry import POINTCLOUD
from calobench.data.showerset import ShowerSet
from calobench.metrics.features import FeatureExtractor
from calobench.metrics.result import Result
from calobench.metrics.stage import GENERATED, REFERENCE, Chunk, EventRows, Log, Stage, quiet

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
    """epochs: maximum epochs; patience: stop after this many epochs without a better test
    accuracy (None: never); hidden / n_layer: network size; block_events: events per read
    block of each sample; max_events: use at most this many events per sample; repeats: runs of
    each classifier stage; xgb_estimators: trees of cls-xgb at most."""

    epochs: int = 50
    batch_size: int = 1000
    lr: float = 2e-4
    hidden: int = 512
    n_layer: int = 2
    patience: int | None = 5
    block_events: int = 4096
    max_events: int | None = None
    repeats: int = 3
    xgb_estimators: int = 400


def _split(n_src: int, n_use: int, rng: np.random.Generator) -> np.ndarray:
    """(n_src,) split label per event: 0 train, 1 test, 2 validation, -1 unused."""
    perm = rng.permutation(n_src)[:n_use]
    n_train, n_test = int(0.6 * n_use), int(0.2 * n_use)
    out = np.full(n_src, -1, dtype=np.int8)
    out[perm[:n_train]] = 0
    out[perm[n_train:n_train + n_test]] = 1
    out[perm[n_train + n_test:]] = 2
    return out


class _Blocks:
    """Paired blocks of the two samples and their split labels."""

    def __init__(self, gen: Source, ref: Source, seed: int, opts: ClassifierOptions) -> None:
        rng = np.random.default_rng([seed, 1])
        n_use = min(gen.n, ref.n)
        if opts.max_events:
            n_use = min(n_use, opts.max_events)
        self.gen, self.ref = gen, ref
        self.split_g, self.split_r = _split(gen.n, n_use, rng), _split(ref.n, n_use, rng)
        self.n_blocks = max(1, int(np.ceil(max(gen.n, ref.n) / opts.block_events)))
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
    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1.0 - 1e-6).fit(calib_p, calib_y)
    q = iso.predict(p)
    bce = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
    return {"auc": float(roc_auc_score(y, q)), "jsd": float((LN2 - bce) / LN2)}


def dnn_test(gen: Source, ref: Source, seed: int, opts: ClassifierOptions,
             scale_columns: np.ndarray | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Train and evaluate one DNN classifier; returns auc, jsd, best_epoch, events used.

    scale_columns: boolean mask of input columns standardised with the mean / std of the
    training events of the first block (None: all columns).
    """
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
    optim = torch.optim.Adam(net.parameters(), lr=opts.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def predict(split: int) -> tuple[np.ndarray, np.ndarray]:
        net.eval()
        ys, ps = [], []
        with torch.no_grad():
            for k in range(blocks.n_blocks):
                x, y = blocks.read(k, split)
                for lo in range(0, len(x), 8192):
                    xb = (torch.from_numpy(x[lo:lo + 8192]) - mean_t) / std_t
                    ps.append(torch.sigmoid(net(xb)).numpy().reshape(-1))
                ys.append(y)
        return np.concatenate(ys), np.concatenate(ps) if ps else np.zeros(0)

    best_acc, best_state, best_epoch, stale = -1.0, None, 0, 0
    for epoch in range(opts.epochs):
        net.train()
        for k in rng.permutation(blocks.n_blocks):
            x, y = blocks.read(int(k), 0)
            order = rng.permutation(len(x))
            x, y = torch.from_numpy(x[order]), torch.from_numpy(y[order])
            for lo in range(0, len(x), opts.batch_size):
                xb = (x[lo:lo + opts.batch_size] - mean_t) / std_t
                loss = loss_fn(net(xb).reshape(-1), y[lo:lo + opts.batch_size])
                optim.zero_grad()
                loss.backward()
                optim.step()
        y_test, p_test = predict(1)
        acc = float(np.mean((p_test > 0.5) == (y_test > 0.5)))
        if progress:
            progress(f"epoch {epoch + 1}/{opts.epochs}: test accuracy {acc:.4f}")
        if acc > best_acc:
            best_acc, best_state, best_epoch, stale = acc, copy.deepcopy(net.state_dict()), epoch + 1, 0
        else:
            stale += 1
        if acc == 1.0 or (opts.patience is not None and stale >= opts.patience):
            break
    net.load_state_dict(best_state)
    y_test, p_test = predict(1)
    y_val, p_val = predict(2)
    out = _scores(y_val, p_val, y_test, p_test)
    out.update(best_epoch=best_epoch, events=blocks.n_use)
    return out


def xgb_test(gen: np.ndarray, ref: np.ndarray, seed: int, max_events: int | None = None,
             n_estimators: int = 400, n_jobs: int = 2) -> dict:
    """Gradient-boosted trees (xgboost) on in-memory high-level vectors; same protocol."""
    import xgboost

    opts = ClassifierOptions(max_events=max_events, block_events=max(len(gen), len(ref)))
    blocks = _Blocks(Source.of_array(gen), Source.of_array(ref), seed, opts)
    (xtr, ytr), (xte, yte), (xva, yva) = (blocks.read(0, s) for s in (0, 1, 2))
    model = xgboost.XGBClassifier(n_estimators=n_estimators, learning_rate=0.1, max_depth=6,
                                  tree_method="hist", random_state=seed, n_jobs=n_jobs,
                                  early_stopping_rounds=20, eval_metric="logloss")
    model.fit(xtr, ytr, eval_set=[(xte, yte)], verbose=False)
    p_test = model.predict_proba(xte)[:, 1]
    p_val = model.predict_proba(xva)[:, 1]
    out = _scores(yva, p_val, yte, p_test)
    out.update(best_epoch=int(model.best_iteration) + 1, events=blocks.n_use)
    return out


def _add_runs(result: Result, suffix: str, runs: list[dict]) -> None:
    """auc_<suffix> and jsd_<suffix>: mean and std over the runs; the runs go to info["classifier_runs"]."""
    for key in ("auc", "jsd"):
        values = np.array([r[key] for r in runs])
        result.add(f"{key}_{suffix}", float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan"))
    result.info.setdefault("classifier_runs", {})[suffix] = runs


class _HighLevelStage(Stage):
    """A classifier of the high-level vectors, which it holds."""

    def __init__(self, options: ClassifierOptions, seed: int = 0, log: Log = quiet) -> None:
        self.options = options
        self.seed = seed
        self.log = log
        self.vectors = EventRows()

    def update(self, chunk: Chunk) -> None:
        self.vectors.add(chunk, chunk.hlf)

    def merge(self, other: "_HighLevelStage") -> "_HighLevelStage":
        self.vectors.merge(other.vectors)
        return self

    def _holds(self) -> dict:
        return {"stages": {self.name: {"holds": f"high-level vectors, {self.vectors.nbytes / 1e6:.1f} MB"}}}


class HighLevelDNNStage(_HighLevelStage):
    """``cls-high``: ``auc_high``, ``jsd_high`` of the DNN on the standardised high-level vectors."""

    name = "cls-high"

    def compute(self) -> Result:
        gen, ref = self.vectors.array(GENERATED), self.vectors.array(REFERENCE)
        runs = []
        for r in range(self.options.repeats):
            self.log(f"cls-high: run {r + 1}/{self.options.repeats}")
            runs.append(dnn_test(Source.of_array(gen), Source.of_array(ref), self.seed + r, self.options,
                                 progress=self.log))
        result = Result(info=self._holds())
        _add_runs(result, "high", runs)
        return result


class XGBStage(_HighLevelStage):
    """``cls-xgb``: ``auc_high_xgb``, ``jsd_high_xgb`` of gradient-boosted trees on the high-level vectors."""

    name = "cls-xgb"

    def compute(self) -> Result:
        gen, ref = self.vectors.array(GENERATED), self.vectors.array(REFERENCE)
        runs = []
        for r in range(self.options.repeats):
            self.log(f"cls-xgb: run {r + 1}/{self.options.repeats}")
            runs.append(xgb_test(gen, ref, self.seed + r, self.options.max_events, self.options.xgb_estimators))
        result = Result(info=self._holds())
        _add_runs(result, "high_xgb", runs)
        return result


class LowLevelDNNStage(Stage):
    """``cls-low``: ``auc_low``, ``jsd_low`` of the DNN on log10(E_inc) and cells / E_inc
    (``FeatureExtractor.low_level``). Its state is each sample and how many of its events were
    fed: training reads them again block by block (two blocks in memory) rather than holding
    the cells. Point clouds: every input column is standardised."""

    name = "cls-low"

    def __init__(self, extractor: FeatureExtractor, options: ClassifierOptions, seed: int = 0,
                 log: Log = quiet) -> None:
        self.extractor = extractor
        self.options = options
        self.seed = seed
        self.log = log
        self.sources: list[ShowerSet | None] = [None, None]
        self.events = [0, 0]

    def update(self, chunk: Chunk) -> None:
        self.sources[chunk.sample] = chunk.source
        self.events[chunk.sample] = max(self.events[chunk.sample], chunk.stop)

    def merge(self, other: "LowLevelDNNStage") -> "LowLevelDNNStage":
        for sample in (GENERATED, REFERENCE):
            if other.sources[sample] is None:
                continue
            if self.sources[sample] is not None and self.sources[sample] is not other.sources[sample]:
                raise ValueError("cls-low: cannot merge states of different samples")
            self.sources[sample] = other.sources[sample]
            self.events[sample] = max(self.events[sample], other.events[sample])
        return self

    def compute(self) -> Result:
        fx = self.extractor
        sources = [Source(n, fx.low_dim, (lambda ss: (lambda a, b: fx.low_level(ss.slice(a, b))))(ss))
                   for ss, n in zip(self.sources, self.events)]
        scale = np.zeros(fx.low_dim, dtype=bool)
        if fx.condition_names:
            scale[-len(fx.condition_names):] = True
        pointcloud = fx.geometry.kind == POINTCLOUD
        if pointcloud:
            # rasterised pads / E_inc are ~1e-5 for a sampling calorimeter: standardise every
            # input column, or the network only sees the (identical) conditions
            scale[:] = True
        runs = []
        for r in range(self.options.repeats):
            self.log(f"cls-low: run {r + 1}/{self.options.repeats} (input dimension {fx.low_dim})")
            runs.append(dnn_test(sources[GENERATED], sources[REFERENCE], self.seed + r, self.options,
                                 scale_columns=scale, progress=self.log))
        block = self.options.block_events
        result = Result(info={"stages": {self.name: {
            "holds": f"two read blocks of {block} events, {2 * block * fx.low_dim * 4 / 1e6:.0f} MB"}}})
        _add_runs(result, "low", runs)
        if pointcloud:
            result.info["notes"] = ["cls-low on point clouds: cells rasterised into a (layers, 15, 15) pad grid "
                                    "around the barycentre"]
        return result
