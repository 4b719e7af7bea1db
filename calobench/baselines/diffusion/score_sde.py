"""score-sde: score-based diffusion on point clouds (x, y, z, E) with a mean-field transformer (seed 002).

What the seed (HGCal / CaloChallenge thesis, chapters 4-5) describes and how it is built here:
- forward process: the VE SDE (sigma_min (sigma_max/sigma_min)^t) or the VP SDE (linear
  beta(t)), config key ``sde``; the network is trained by denoising score matching with the
  sigma^2 weighting: it predicts -z from x_t = m(t) x_0 + sigma(t) z (score = output / sigma(t));
- sampling: a predictor-corrector sampler (predictor ``euler-maruyama`` or ``reverse-diffusion``,
  Langevin corrector with signal-to-noise ratio ``snr``, ``n_corrector`` steps per step) or the
  probability-flow ODE (Heun steps), config key ``sampler`` = ``pc`` | ``ode``, ``sample_steps``;
- the score network: a transformer encoder over the points; time and log E_inc enter through
  Gaussian Fourier projections, other conditions through a dense layer; attention is
  mean-field: a class token attends to every point (masked), and its summary is passed back to
  every point's MLP; residual connections and layer norm around every block;
- the number of points comes from a conditional Gaussian-mixture model of log(cell count)
  given the conditions.

Point features: cepc showers are turned into a local frame of the shower axis given by the
conditions (theta, phi): arc length along phi, z minus the axis position, depth r - r_inner;
CaloChallenge-2 voxels become points (x, y, depth) at the voxel centres, spread uniformly
inside the voxel for training (dequantisation). The energy feature is log(E / E_inc). All four
are standardised. Generated cepc points are put on the nearest sensitive layer, inside the
barrel length, with energies >= the readout threshold (points below it are dropped);
generated CaloChallenge-2 points deposit their energy in the voxel they fall in (points
outside the last radial bin go to it), giving (N, 6480) voxel showers.
Batches of variable-length clouds are padded, with masks; sampling has no per-shower loop.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.baselines.diffusion.layers import ConditionalGMM, GaussianFourierProjection
from calobench.baselines.diffusion.schedules import make_sde
from calobench.data.showerset import CellList, ShowerSet
from calobench.errors import CalobenchError
from calobench.models.common.conditioning import ConditionEncoder
from calobench.models.common.layers import mlp
from calobench.models.common.trainer import Trainer, shuffled_batches
from calobench.models.torch_base import TorchGenerator

T_EPS = 1e-3  # smallest diffusion time used in training and sampling


# ---------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------


class MeanFieldBlock(nn.Module):
    """Class-token attention over the points, then a per-point MLP that sees the token."""

    def __init__(self, dim: int, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_points = nn.LayerNorm(dim)
        self.norm_token = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_token2 = nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.norm_points2 = nn.LayerNorm(dim)
        self.point_mlp = nn.Sequential(nn.Linear(3 * dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                       nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, token: torch.Tensor, emb: torch.Tensor,
                pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L, d) points, token (B, 1, d), emb (B, 1, d), pad (B, L) True where padding."""
        h = self.norm_points(x)
        a, _ = self.attn(self.norm_token(token), h, h, key_padding_mask=pad, need_weights=False)
        token = token + a
        token = token + self.token_mlp(self.norm_token2(token))
        length = x.shape[1]
        x = x + self.point_mlp(torch.cat([self.norm_points2(x), token.expand(-1, length, -1),
                                          emb.expand(-1, length, -1)], dim=-1))
        return x, token


class ScoreTransformer(nn.Module):
    """s(x_t, t, c) * sigma(t) for padded point clouds: (B, L, 4) -> (B, L, 4)."""

    def __init__(self, n_cond: int, dim: int, hidden: int, blocks: int, heads: int, dropout: float,
                 time_scale: float, energy_scale: float) -> None:
        super().__init__()
        self.inp = nn.Linear(4, dim)
        self.time_proj = GaussianFourierProjection(dim // 2, time_scale, seed=1)
        self.energy_proj = GaussianFourierProjection(dim // 2, energy_scale, seed=2)
        self.cond = nn.Linear(n_cond, dim)
        self.emb = mlp(4 * (dim // 2) + dim, hidden, dim, depth=1)
        self.token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(MeanFieldBlock(dim, hidden, heads, dropout) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        emb = self.emb(torch.cat([self.time_proj(t), self.energy_proj(cond[:, 0]), self.cond(cond)], dim=-1))
        emb = emb[:, None, :]
        h = self.inp(x) + emb
        token = self.token.expand(len(x), -1, -1) + emb
        for block in self.blocks:
            h, token = block(h, token, emb, pad)
        return self.out(h) * (~pad)[..., None]


# ---------------------------------------------------------------------------------------
# Point frames
# ---------------------------------------------------------------------------------------


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _padded_index(offsets: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gather index (B, L) into the flat point array and validity mask (B, L) for events ``index``."""
    counts = offsets[index + 1] - offsets[index]
    length = max(int(counts.max()) if len(counts) else 1, 1)
    pos = np.arange(length)[None, :]
    valid = pos < counts[:, None]
    gather = np.where(valid, offsets[index][:, None] + pos, 0)
    return gather, valid


class ScoreSDE(TorchGenerator):
    """Score-based SDE diffusion on point clouds; VE or VP; PC or probability-flow ODE sampling."""

    name = "score-sde"
    family = "diffusion"
    seed_document = "002"
    datasets = ("cepc", "calochallenge-2")
    description = "Score-based SDE (VE/VP) with a mean-field-attention transformer on (x, y, z, E) point clouds"
    presets = {
        "tiny": {"sde": "ve", "dim": 16, "hidden": 32, "blocks": 1, "heads": 2, "dropout": 0.0,
                 "epochs": 2, "batch_size": 16, "lr": 2e-3, "max_train": 200, "sampler": "pc",
                 "predictor": "reverse-diffusion", "corrector": "langevin", "snr": 0.16, "n_corrector": 1,
                 "sample_steps": 4, "count_hidden": 16, "count_components": 2},
        "quick": {"sde": "ve", "dim": 48, "hidden": 96, "blocks": 2, "heads": 4, "dropout": 0.0,
                  "epochs": 4, "min_steps": 1000, "batch_size": 16, "lr": 1e-3, "max_train": 1500, "sampler": "pc",
                  "predictor": "reverse-diffusion", "corrector": "langevin", "snr": 0.16, "n_corrector": 1,
                  "sample_steps": 25, "count_hidden": 64, "count_components": 4},
        "full": {"sde": "ve", "dim": 96, "hidden": 96, "blocks": 6, "heads": 8, "dropout": 0.1,
                 "epochs": 200, "min_steps": 0, "batch_size": 128, "lr": 3e-4, "max_train": 0, "sampler": "pc",
                 "predictor": "reverse-diffusion", "corrector": "langevin", "snr": 0.16, "n_corrector": 1,
                 "sample_steps": 200, "count_hidden": 128, "count_components": 8},
    }

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        cfg = self.config
        self.encoder = ConditionEncoder(self.dataset)
        n_cond = self.encoder.n_features
        self.sde = make_sde(cfg["sde"], cfg)
        self.net = ScoreTransformer(n_cond, int(cfg["dim"]), int(cfg["hidden"]), int(cfg["blocks"]),
                                    int(cfg["heads"]), float(cfg["dropout"]), float(cfg.get("time_scale", 16.0)),
                                    float(cfg.get("energy_scale", 1.0))).to(self.torch_device)
        self.count = ConditionalGMM(n_cond, int(cfg["count_hidden"]), int(cfg["count_components"])).to(self.torch_device)

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net, "count": self.count}

    def after_load(self) -> None:
        self.encoder.load(self.extra)

    # ---- frames --------------------------------------------------------------------
    def _to_features(self, data: ShowerSet, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        """(M, 4) raw features (before standardisation) and offsets (N + 1)."""
        geometry = self.dataset.geometry
        if geometry.is_voxel:
            showers = np.asarray(data.showers)
            event, cell = np.nonzero(showers > 0)
            energy = showers[event, cell].astype(np.float64)
            centres, sizes = geometry.centres[cell], geometry.sizes[cell]
            r = np.hypot(centres[:, 0], centres[:, 1])
            alpha = np.arctan2(centres[:, 1], centres[:, 0])
            depth = centres[:, 2].astype(np.float64)
            if rng is not None:  # spread the point uniformly inside its voxel
                r = r + (rng.random(len(r)) - 0.5) * sizes[:, 0]
                alpha = alpha + (rng.random(len(r)) - 0.5) * sizes[:, 1] / np.maximum(r, 1e-3)
                depth = depth + (rng.random(len(r)) - 0.5) * sizes[:, 2]
            feats = np.stack([r * np.cos(alpha), r * np.sin(alpha), depth,
                              np.log(energy / data.energies[event])], axis=1)
            counts = np.bincount(event, minlength=len(data))
        else:
            cl = data.showers
            event = cl.event_index
            x, y, z, energy = (cl.cells[:, i].astype(np.float64) for i in range(4))
            theta = np.radians(data.conditions["theta"])[event]
            phi = np.radians(data.conditions["phi"])[event]
            r = np.hypot(x, y)
            u = r * _wrap(np.arctan2(y, x) - phi)
            v = z - r / np.tan(theta)
            w = r - self.dataset.geometry.barrel.inner_radius
            if rng is not None:
                cell = self.dataset.geometry.barrel.cell_size
                u = u + (rng.random(len(u)) - 0.5) * cell
                v = v + (rng.random(len(u)) - 0.5) * cell
                w = w + (rng.random(len(u)) - 0.5) * self.dataset.geometry.barrel.sensor_thickness
            feats = np.stack([u, v, w, np.log(np.clip(energy, 1e-6, None) / data.energies[event])], axis=1)
            counts = cl.counts
        offsets = np.zeros(len(data) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return feats, offsets

    def _from_features(self, feats: np.ndarray, counts: np.ndarray, energies: np.ndarray,
                       conditions: dict[str, np.ndarray]) -> np.ndarray | CellList:
        """Raw features of generated points -> voxel showers (N, cells) or a CellList."""
        geometry = self.dataset.geometry
        n = len(energies)
        event = np.repeat(np.arange(n), counts)
        finite = np.isfinite(feats).all(1)  # a diverged point is dropped, never written
        feats, event = feats[finite], event[finite]
        energy = np.exp(np.clip(feats[:, 3], -30.0, 0.0)) * energies[event]  # a cell holds <= E_inc
        if geometry.is_voxel:
            r = np.hypot(feats[:, 0], feats[:, 1])
            alpha = np.arctan2(feats[:, 1], feats[:, 0])
            depth_centres = np.array([geometry.centres[s.start, 2] for s in geometry.layer_slices])
            layer = np.abs(feats[:, 2][:, None] - depth_centres[None, :]).argmin(1)
            cell = np.zeros(len(r), dtype=np.int64)
            for index, (binning, sl) in enumerate(zip(geometry.layers, geometry.layer_slices)):
                here = layer == index
                edges = np.asarray(binning.r_edges)
                ir = np.clip(np.searchsorted(edges, r[here], side="right") - 1, 0, binning.n_r - 1)
                ia = np.clip(((alpha[here] + np.pi) / (2 * np.pi) * binning.n_alpha).astype(np.int64),
                             0, binning.n_alpha - 1)
                cell[here] = sl.start + ia * binning.n_r + ir
            out = np.zeros(n * geometry.n_cells, dtype=np.float64)
            np.add.at(out, event * geometry.n_cells + cell, energy)
            out = out.reshape(n, geometry.n_cells)
            out[out < geometry.threshold] = 0.0
            return out.astype(np.float32)
        barrel = geometry.barrel
        theta = np.radians(conditions["theta"])[event]
        phi = np.radians(conditions["phi"])[event]
        radii = np.asarray(barrel.layer_radii)
        layer = np.abs((feats[:, 2] + barrel.inner_radius)[:, None] - radii[None, :]).argmin(1)
        r = radii[layer]
        a = phi + feats[:, 0] / r
        z = np.clip(feats[:, 1] + r / np.tan(theta), -barrel.half_length, barrel.half_length)
        cells = np.stack([r * np.cos(a), r * np.sin(a), z, energy], axis=1).astype(np.float32)
        keep = cells[:, 3] >= geometry.threshold
        kept_counts = np.bincount(event[keep], minlength=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(kept_counts, out=offsets[1:])
        return CellList(cells[keep], offsets)

    # ---- training ------------------------------------------------------------------
    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        cfg = self.config
        if int(cfg.get("max_train", 0)) and len(train) > int(cfg["max_train"]):
            train = train.slice(0, int(cfg["max_train"]))
        energies, conditions = self.encoder.check(train.energies, train.conditions, "training sample")
        rng = np.random.default_rng(self.seed)
        feats, offsets = self._to_features(train, rng)
        counts = np.diff(offsets)
        keep = np.flatnonzero(counts > 0)
        if len(keep) == 0:
            raise CalobenchError("score-sde: every training shower is empty")
        self.extra = self.encoder.fit(energies[keep], {k: v[keep] for k, v in conditions.items()})
        self.extra["feat_mean"] = feats.mean(0)
        self.extra["feat_std"] = np.maximum(feats.std(0), 1e-6)
        log_n = np.log(counts[keep])
        self.extra["count_mean"] = np.array([log_n.mean()])
        self.extra["count_std"] = np.array([max(log_n.std(), 1e-3)])
        self.extra["count_max"] = np.array([float(counts.max())])
        x_all = torch.from_numpy(((feats - self.extra["feat_mean"]) / self.extra["feat_std"]).astype(np.float32))
        cond_all = torch.from_numpy(self.encoder.encode(energies, conditions))
        y_count = torch.from_numpy(((np.log(np.maximum(counts, 1)) - self.extra["count_mean"][0])
                                    / self.extra["count_std"][0]).astype(np.float32))
        if epochs is None:  # the preset's epochs, at least enough for ``min_steps`` optimiser steps
            per_epoch = math.ceil(len(keep) / int(cfg["batch_size"]))
            epochs = max(int(cfg["epochs"]), math.ceil(int(cfg.get("min_steps", 0)) / per_epoch))
        epochs = int(epochs)
        opt_net = torch.optim.Adam(self.net.parameters(), lr=float(cfg["lr"]))
        opt_count = torch.optim.Adam(self.count.parameters(), lr=1e-3)
        dev = self.torch_device
        keep_t = torch.from_numpy(keep)

        def step(idx: torch.Tensor) -> dict[str, float]:
            events = keep_t[idx].numpy()
            gather, valid = _padded_index(offsets, events)
            x0 = x_all[torch.from_numpy(gather)] * torch.from_numpy(valid)[..., None]
            mask = torch.from_numpy(valid)
            t = torch.rand(len(events), generator=self.rng) * (1 - T_EPS) + T_EPS
            z = torch.randn(x0.shape, generator=self.rng) * mask[..., None]
            x0, mask, t, z = x0.to(dev), mask.to(dev), t.to(dev), z.to(dev)
            c = cond_all[events].to(dev)
            loss = self._dsm_loss(x0, mask, t, z, c)
            loss_c = self.count.nll(y_count[events].to(dev), c)
            opt_net.zero_grad()
            opt_count.zero_grad()
            (loss + loss_c).backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
            opt_net.step()
            opt_count.step()
            return {"loss": float(loss.detach()), "count_nll": float(loss_c.detach())}

        trainer = Trainer(self, {"net": opt_net, "count": opt_count}, checkpoint_dir=checkpoint_dir, resume=resume,
                          progress=progress)
        history = trainer.run(epochs, lambda epoch: shuffled_batches(len(keep_t), int(cfg["batch_size"]), self.rng),
                              step)
        history["train_events"] = int(len(keep))
        history["train_points"] = int(len(feats))
        return history

    def _dsm_loss(self, x0, mask, t, z, c) -> torch.Tensor:
        coef, std = self.sde.marginal(t)
        xt = coef[:, None, None] * x0 + std[:, None, None] * z
        out = self._net(xt, t, c, ~mask)
        err = ((out + z) ** 2).sum(-1) * mask
        return err.sum() / (mask.sum() * 4)

    def _net(self, x, t, c, pad) -> torch.Tensor:
        """sigma(t) * score: the raw network output with the input scaled to unit variance."""
        coef, std = self.sde.marginal(t)
        scale = 1.0 / torch.sqrt(coef ** 2 + std ** 2)
        return self.net(x * scale[:, None, None], t, c, pad)

    def score(self, x, t, c, pad) -> torch.Tensor:
        _, std = self.sde.marginal(t)
        return self._net(x, t, c, pad) / std[:, None, None]

    # ---- sampling ------------------------------------------------------------------
    @torch.no_grad()
    def _solve(self, cond: torch.Tensor, valid: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        cfg = self.config
        sampler = cfg.get("sampler", "pc")
        predictor = cfg.get("predictor", "reverse-diffusion")
        corrector = cfg.get("corrector", "langevin")
        if sampler not in ("pc", "ode"):
            raise CalobenchError(f"score-sde: config key 'sampler': expected 'pc' or 'ode', found {sampler!r}")
        if predictor not in ("euler-maruyama", "reverse-diffusion"):
            raise CalobenchError("score-sde: config key 'predictor': expected 'euler-maruyama' or "
                                 f"'reverse-diffusion', found {predictor!r}")
        if corrector not in ("langevin", "none"):
            raise CalobenchError(f"score-sde: config key 'corrector': expected 'langevin' or 'none', found {corrector!r}")
        steps = max(1, int(cfg.get("sample_steps", 100)))
        snr = float(cfg.get("snr", 0.16))
        n_corr = int(cfg.get("n_corrector", 1)) if corrector == "langevin" else 0
        dev = self.torch_device
        b = len(cond)
        pad = ~valid
        m = valid[..., None].float()
        n_points = valid.sum(1).clamp(min=1).float()

        def noise():
            return torch.randn((b, valid.shape[1], 4), device=dev, generator=generator) * m

        x = noise() * self.sde.prior_std()
        times = torch.linspace(1.0, T_EPS, steps + 1, device=dev)
        dt = (1.0 - T_EPS) / steps
        for i in range(steps):
            t = times[i].expand(b)
            last = i == steps - 1
            if sampler == "ode":  # probability flow, Heun
                d1 = self._ode_drift(x, t, cond, pad) * m
                x_e = x - d1 * dt
                d2 = self._ode_drift(x_e, times[i + 1].expand(b), cond, pad) * m
                x = x - 0.5 * (d1 + d2) * dt
                continue
            for _ in range(n_corr):  # Langevin corrector (Song et al. 2021, algorithm 4/5)
                grad = self.score(x, t, cond, pad) * m
                z = noise()
                grad_norm = torch.sqrt((grad ** 2).sum((1, 2)) / n_points)
                z_norm = torch.sqrt((z ** 2).sum((1, 2)) / n_points)
                alpha = 1.0 if self.sde.kind == "ve" else 1.0 - (self.sde.beta(t) * dt).clamp(max=0.999)
                eps = 2 * alpha * (snr * z_norm / grad_norm.clamp(min=1e-12)) ** 2
                x = x + eps[:, None, None] * grad + torch.sqrt(2 * eps)[:, None, None] * z
            score = self.score(x, t, cond, pad) * m
            if predictor == "euler-maruyama":
                drift, g = self.sde.drift_diffusion(x, t)
                x_mean = x - (drift - (g ** 2)[:, None, None] * score) * dt
                x = x_mean + (g * math.sqrt(dt))[:, None, None] * noise()
            else:
                f, g = self.sde.discretized(x, t, dt)
                x_mean = x - f + (g ** 2)[:, None, None] * score
                x = x_mean + g[:, None, None] * noise()
            if last:
                x = x_mean
        return x * m

    def _ode_drift(self, x, t, cond, pad) -> torch.Tensor:
        drift, g = self.sde.drift_diffusion(x, t)
        return drift - 0.5 * (g ** 2)[:, None, None] * self.score(x, t, cond, pad)

    @torch.no_grad()
    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        if "feat_mean" not in self.extra:
            raise CalobenchError("score-sde: the model is not trained (call fit or load a saved model)")
        energies, conditions = self.encoder.check(energies, conditions, "sample")
        cond_all = self.encoder.encode(energies, conditions)
        generator = torch.Generator(device=self.torch_device).manual_seed(self.seed)
        self.net.eval()
        self.count.eval()
        cmax = int(self.config.get("max_points", 0)) or int(math.ceil(1.2 * float(self.extra["count_max"][0])))
        feat_mean = torch.as_tensor(self.extra["feat_mean"], dtype=torch.float32, device=self.torch_device)
        feat_std = torch.as_tensor(self.extra["feat_std"], dtype=torch.float32, device=self.torch_device)
        # showers per network call: batch_size, but at most ``max_batch_points`` padded points
        chunk = max(1, min(int(batch_size), int(self.config.get("max_batch_points", 200_000)) // cmax))
        parts, all_counts = [], []
        cond_dev = torch.from_numpy(cond_all).to(self.torch_device)
        for start in range(0, len(energies), chunk):
            stop = min(start + chunk, len(energies))
            cond = cond_dev[start:stop]
            log_n = self.count.sample(cond, generator) * float(self.extra["count_std"][0]) + float(self.extra["count_mean"][0])
            counts = torch.exp(log_n).round().clamp(1, cmax).long()
            length = int(counts.max())
            valid = torch.arange(length, device=self.torch_device)[None, :] < counts[:, None]
            x = self._solve(cond, valid, generator)
            feats = (x * feat_std + feat_mean)[valid]
            parts.append(feats)  # kept on the device: one copy to the host after the last chunk
            all_counts.append(counts)
        feats = torch.cat(parts).cpu().numpy().astype(np.float64) if parts else np.zeros((0, 4))
        counts = torch.cat(all_counts).cpu().numpy() if all_counts else np.zeros(0, np.int64)
        showers = self._from_features(feats, counts, energies, conditions)
        provenance = {"generator": self.name, "preset": self.preset, "seed": self.seed,
                      "sde": self.config["sde"], "sampler": self.config.get("sampler"),
                      "sample_steps": int(self.config.get("sample_steps", 0))}
        particle = ",".join(self.dataset.particles)
        return ShowerSet(self.dataset.geometry, energies, showers, conditions, particle, provenance, self.dataset.name)
