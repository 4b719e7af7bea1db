"""Autoregressive cell transformer for CEPC point clouds (seed 000).

A decoder-only transformer writes a shower's cell list one cell per token, starting from a
BOS token and conditioned on the photon four-momentum. Each token is one cell in the
shower's local frame (see ``cell_tokens``): layer, pad row v (z), pad column u (r*phi),
energy; cells come in raster order (layer, then v, then u), so positions only increase and
every generated cell sits on a real pad. Per token the network predicts, in this order:
stop (EOS), layer, v given layer, u given (layer, v) and ln E given (layer, v, u), each as a
categorical distribution (energies are bins of ln E with a uniform draw inside the bin, so
they are positive and above threshold by construction).

Attention is local in blocks of ``window`` tokens (a token sees its own block up to itself
and the whole previous block), which keeps training linear in the sequence length and lets
generation run ~2000 steps with a key/value cache of 2 * window entries. All showers of a
batch step together on the device.

Training is teacher forcing with the exact negative log-likelihood plus the seed's losses:
Jensen-Shannon divergence between the soft histograms (summed predicted probabilities) and
the true histograms of layer, v, u and ln E (weight 2), total-energy MSE, barycenter
distance, and a weighted BCE on extended EOS labels (1 on the low-energy tail at the end of
the sequence). See docs/models-autoregressive.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from calobench.baselines.autoregressive.cell_tokens import PadFrame, Tokens, axis_frame, decode, encode, fit_frame, nominal_frame
from calobench.data.showerset import CellList, ShowerSet
from calobench.errors import CalobenchError
from calobench.models.common.conditioning import ConditionEncoder
from calobench.models.common.layers import sinusoidal_embedding
from calobench.models.common.trainer import Trainer
from calobench.models.torch_base import TorchGenerator

_COMMON: dict[str, Any] = {
    "js_weight": 2.0,           # seed: JS loss weight 2, the others 1
    "energy_weight": 1.0,
    "center_weight": 1.0,
    "tail_weight": 1.0,
    "tail_energy_fraction": 0.01,  # extended EOS label: the cells holding the last 1 % of energy
    "tail_pos_weight": 5.0,
    "grad_clip": 1.0,
    "warmup_steps": 50,
    "weight_decay": 0.01,
    "valid_showers": 32,
    "steps_per_epoch": 0,       # 0: an epoch is one pass over the training showers
}

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {**_COMMON, "d_model": 32, "n_layers": 1, "n_heads": 2, "window": 16, "half_window": 12,
             "energy_bins": 24, "max_cells": 400, "epochs": 2, "batch_size": 4, "lr": 3e-3,
             "max_train_showers": 24, "valid_showers": 4, "warmup_steps": 2},
    "quick": {**_COMMON, "d_model": 64, "n_layers": 2, "n_heads": 4, "window": 64, "half_window": 32,
              "energy_bins": 48, "max_cells": 3072, "epochs": 5, "steps_per_epoch": 60, "batch_size": 8,
              "lr": 2e-3, "max_train_showers": 2000},
    "full": {**_COMMON, "d_model": 256, "n_layers": 6, "n_heads": 8, "window": 256, "half_window": 32,
             "energy_bins": 64, "max_cells": 3072, "epochs": 60, "batch_size": 32, "lr": 3e-4,
             "max_train_showers": 0, "warmup_steps": 500},
}

N_RUN_FEATURES = 8  # per-token scalar inputs, see _token_features


#: Steps between host checks that every shower has stopped, on an accelerator (cuda, mps).
ALIVE_CHECK = 8

class BlockAttention(nn.Module):
    """Causal self-attention restricted to the current and the previous block of ``window`` tokens."""

    def __init__(self, d_model: int, n_heads: int, window: int) -> None:
        super().__init__()
        self.n_heads, self.window = n_heads, window
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        return q, k, v  # (B, H, T, dh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, d) with T a multiple of window."""
        b, t, d = x.shape
        w = self.window
        nb = t // w
        q, k, v = self._split(x)
        q = q.reshape(b, self.n_heads, nb, w, -1)
        k = k.reshape(b, self.n_heads, nb, w, -1)
        v = v.reshape(b, self.n_heads, nb, w, -1)
        k2 = torch.cat([F.pad(k, (0, 0, 0, 0, 1, 0))[:, :, :-1], k], dim=3)  # (B,H,nb,2w,dh)
        v2 = torch.cat([F.pad(v, (0, 0, 0, 0, 1, 0))[:, :, :-1], v], dim=3)
        i = torch.arange(w, device=x.device)
        j = torch.arange(2 * w, device=x.device)
        causal = (j[None, :] >= w) & (j[None, :] - w <= i[:, None])
        previous = (j[None, :] < w) & (torch.arange(nb, device=x.device)[:, None, None] > 0)
        mask = causal[None] | previous  # (nb, w, 2w)
        y = F.scaled_dot_product_attention(q, k2, v2, attn_mask=mask)
        return self.out(y.reshape(b, self.n_heads, t, -1).transpose(1, 2).reshape(b, t, d))

    def step(self, x: torch.Tensor, cache: dict, t: int) -> torch.Tensor:
        """One token per sequence, x (B, 1, d) at position t; cache holds 'k', 'v' (B, H, 2w, dh)."""
        b, _, d = x.shape
        w = self.window
        q, k, v = self._split(x)
        if "k" not in cache:
            cache["k"] = k.new_zeros(b, self.n_heads, 2 * w, k.shape[-1])
            cache["v"] = torch.zeros_like(cache["k"])
        i = t % w
        if i == 0 and t > 0:
            cache["k"][:, :, :w] = cache["k"][:, :, w:].clone()
            cache["v"][:, :, :w] = cache["v"][:, :, w:].clone()
        cache["k"][:, :, w + i] = k[:, :, 0]
        cache["v"][:, :, w + i] = v[:, :, 0]
        j = torch.arange(2 * w, device=x.device)
        mask = ((j >= w) & (j <= w + i)) | ((j < w) & (t >= w))
        y = F.scaled_dot_product_attention(q, cache["k"], cache["v"], attn_mask=mask[None, None, None, :])
        return self.out(y.transpose(1, 2).reshape(b, 1, d))


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, window: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = BlockAttention(d_model, n_heads, window)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))

    def step(self, x: torch.Tensor, cache: dict, t: int) -> torch.Tensor:
        x = x + self.attn.step(self.ln1(x), cache, t)
        return x + self.mlp(self.ln2(x))


class CellNet(nn.Module):
    """The decoder: token embedding, blocks and the chained output heads."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int, window: int, n_det_layers: int,
                 size: int, energy_bins: int) -> None:
        super().__init__()
        self.d_model, self.window = d_model, window
        self.n_det_layers, self.size, self.energy_bins = n_det_layers, size, energy_bins
        self.emb_layer = nn.Embedding(n_det_layers + 1, d_model)  # last index: BOS
        self.emb_v = nn.Embedding(size + 1, d_model)
        self.emb_u = nn.Embedding(size + 1, d_model)
        self.features = nn.Linear(N_RUN_FEATURES, d_model)
        self.cond = nn.Sequential(nn.Linear(3, d_model), nn.GELU(), nn.Linear(d_model, d_model))
        self.blocks = nn.ModuleList([Block(d_model, n_heads, window) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head_eos = nn.Linear(d_model, 2)  # [stop hazard, extended (tail) label]
        self.head_layer = nn.Linear(d_model, n_det_layers + 1)  # layer step 0..L (BOS: layer + 1)
        self.next_layer = nn.Embedding(n_det_layers, d_model)
        self.head_v = nn.Sequential(nn.GELU(), nn.Linear(d_model, 2 * size))  # [absolute, step]
        self.next_v = nn.Embedding(size, d_model)
        self.head_u = nn.Sequential(nn.GELU(), nn.Linear(d_model, 2 * size))  # [absolute, step]
        self.next_u = nn.Embedding(size, d_model)
        self.head_e = nn.Sequential(nn.GELU(), nn.Linear(d_model, energy_bins))

    def embed(self, layer, v, u, feats, cond, position) -> torch.Tensor:
        """Token inputs: previous cell (layer, v, u; BOS = n_layers / size), features, condition."""
        return (self.emb_layer(layer) + self.emb_v(v) + self.emb_u(u) + self.features(feats)
                + self.cond(cond)[:, None, :] + sinusoidal_embedding(position, self.d_model))

    @staticmethod
    def _from_steps(step_logits: torch.Tensor, prev: torch.Tensor, n: int) -> torch.Tensor:
        """Logits over absolute index 0..n-1 read from logits over steps (index - prev)."""
        index = torch.arange(n, device=prev.device) - prev[..., None]
        return torch.gather(step_logits, -1, index.clamp(0, step_logits.shape[-1] - 1))

    def layer_logits(self, h: torch.Tensor, prev_layer: torch.Tensor) -> torch.Tensor:
        """(..., L) logits of the next layer, parametrised as the step from ``prev_layer`` (BOS: -1)."""
        return self._from_steps(self.head_layer(h), prev_layer, self.n_det_layers)

    def v_logits(self, h1: torch.Tensor, layer, prev_layer, prev_v) -> torch.Tensor:
        """(..., S) logits of the pad row: a step from the previous row within a layer, absolute in a new one."""
        out = self.head_v(h1)
        absolute, steps = out[..., :self.size], out[..., self.size:]
        same = (layer == prev_layer)[..., None]
        return torch.where(same, self._from_steps(steps, prev_v.clamp_max(self.size - 1), self.size), absolute)

    def u_logits(self, h2: torch.Tensor, layer, v, prev_layer, prev_v, prev_u) -> torch.Tensor:
        """(..., S) logits of the pad column: a step along the same row, absolute on a new row."""
        out = self.head_u(h2)
        absolute, steps = out[..., :self.size], out[..., self.size:]
        same = ((layer == prev_layer) & (v == prev_v))[..., None]
        return torch.where(same, self._from_steps(steps, prev_u.clamp_max(self.size - 1), self.size), absolute)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def trunk_step(self, x: torch.Tensor, caches: list[dict], t: int) -> torch.Tensor:
        for block, cache in zip(self.blocks, caches):
            x = block.step(x, cache, t)
        return self.ln_f(x)


def _masked(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask | ~mask.any(dim=-1, keepdim=True)  # never an empty support (no NaN)
    return logits.masked_fill(~mask, -1e9)


def _order_masks(prev_layer, prev_v, prev_u, size: int, n_layers: int):
    """Raster order constraints given the previous cell (BOS: prev_layer = -1).

    Returns (layer_mask (...,L), v_mask_fn(layer) -> (...,S), u_mask_fn(layer, v) -> (...,S)).
    """
    dev = prev_layer.device
    ls = torch.arange(n_layers, device=dev)
    ss = torch.arange(size, device=dev)
    last = (prev_v == size - 1) & (prev_u == size - 1)
    layer_mask = (ls >= prev_layer[..., None]) & ~((ls == prev_layer[..., None]) & last[..., None])

    def v_mask(layer):
        same = (layer == prev_layer)[..., None]
        floor = torch.where(prev_u == size - 1, prev_v + 1, prev_v)[..., None]
        return ~same | (ss >= floor)

    def u_mask(layer, v):
        same = ((layer == prev_layer) & (v == prev_v))[..., None]
        return ~same | (ss > prev_u[..., None])

    return layer_mask, v_mask, u_mask


def _js(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (nats) between histograms along the last axis."""
    p = p / p.sum(-1, keepdim=True).clamp_min(1e-12)
    q = q / q.sum(-1, keepdim=True).clamp_min(1e-12)
    m = 0.5 * (p + q)
    kl = lambda a, b: (a * (torch.log(a.clamp_min(1e-12)) - torch.log(b.clamp_min(1e-12)))).sum(-1)  # noqa: E731
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


class CellTransformer(TorchGenerator):
    """Decoder-only transformer generating CEPC cell lists cell by cell (seed 000)."""

    name = "cell-transformer"
    family = "autoregressive"
    seed_document = "000"
    datasets = ("cepc",)
    presets = PRESETS
    description = "autoregressive transformer over raster-ordered pad cells in the shower frame (CEPC)"

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        c = self.config
        if c["d_model"] % c["n_heads"]:
            raise CalobenchError(f"model {self.name}: d_model {c['d_model']} is not a multiple of n_heads {c['n_heads']}")
        self.geometry = self.dataset.geometry
        self.n_det_layers = self.geometry.barrel.n_layers
        self.size = 2 * int(c["half_window"]) + 1
        torch.manual_seed(self.seed)
        self.net = CellNet(int(c["d_model"]), int(c["n_layers"]), int(c["n_heads"]), int(c["window"]),
                           self.n_det_layers, self.size, int(c["energy_bins"])).to(self.torch_device)
        # the photon four-momentum in the local frame: (ln(E / E_ref), p_z / E, p_T / E), E_ref the
        # centre of the energy range (a fixed encoding, not fitted)
        lo, hi = self.dataset.energy_range
        self.encoder = ConditionEncoder(self.dataset, conditions=("theta",), angles=("theta",))
        self.encoder.set_standardisation([0.5 * (math.log(lo) + math.log(hi)), 0.0, 0.0], [1.0, 1.0, 1.0])
        self.frame: PadFrame = nominal_frame(self.geometry)
        self.fitted = False

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def after_load(self) -> None:
        self.frame = PadFrame.from_arrays(self.extra)
        self.fitted = True

    # ---- data ----------------------------------------------------------------------
    def _conditions(self, energies, conditions: dict | None, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validated energies (N,) MeV and the angles theta, phi (N,) float64 degrees."""
        energies, conditions = self.encoder.check(energies, conditions, what)
        return energies, np.asarray(conditions["theta"], np.float64), np.asarray(conditions["phi"], np.float64)

    def _cond_vector(self, energies: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(N, 3) float32 photon four-momentum in the local frame: (ln(E / E_ref), p_z / E, p_T / E)."""
        return self.encoder.encode(energies, {"theta": theta})

    def _energy_edges(self) -> np.ndarray:
        return np.asarray(self.extra["energy_edges"], dtype=np.float64)

    def _encode_set(self, showers: ShowerSet, what: str = "training sample"
                    ) -> tuple[Tokens, np.ndarray, np.ndarray, np.ndarray]:
        energies, theta, phi = self._conditions(showers.energies, showers.conditions, what)
        cl = showers.showers
        if not isinstance(cl, CellList):
            raise CalobenchError(f"model {self.name}: expected point-cloud showers (CellList), found {type(cl).__name__}")
        tokens = encode(self.geometry, self.frame, cl.cells, cl.offsets, theta, phi, int(self.config["half_window"]))
        return tokens, energies, theta, phi

    def _batch(self, tokens: Tokens, energies, theta, phi, index: np.ndarray) -> dict[str, torch.Tensor]:
        """Teacher-forcing tensors for the showers ``index``: inputs at t are cell t-1 (BOS at 0)."""
        w = int(self.config["window"])
        counts = tokens.counts[index]
        t_len = int(math.ceil((counts.max() + 1) / w) * w)
        b = len(index)
        edges = self._energy_edges()
        nbins = len(edges) - 1
        layer = np.full((b, t_len), self.n_det_layers, np.int64)
        v = np.full((b, t_len), self.size, np.int64)
        u = np.full((b, t_len), self.size, np.int64)
        log_e = np.zeros((b, t_len), np.float32)
        for row, i in enumerate(index):  # ragged copy, one slice per shower
            lo, hi = tokens.offsets[i], tokens.offsets[i + 1]
            layer[row, :hi - lo] = tokens.layer[lo:hi]
            v[row, :hi - lo] = tokens.v[lo:hi]
            u[row, :hi - lo] = tokens.u[lo:hi]
            log_e[row, :hi - lo] = tokens.log_e[lo:hi]
        valid_cell = np.arange(t_len)[None, :] < counts[:, None]
        e_bin = np.clip(np.floor((log_e - edges[0]) / (edges[1] - edges[0])), 0, nbins - 1).astype(np.int64)
        # inputs: shift right by one, BOS first
        def shift(a, fill):
            return np.concatenate([np.full((b, 1), fill, a.dtype), a[:, :-1]], axis=1)
        in_layer, in_v, in_u = shift(layer, self.n_det_layers), shift(v, self.size), shift(u, self.size)
        in_loge = shift(np.where(valid_cell, log_e, 0.0).astype(np.float32), 0.0)
        energy = np.where(valid_cell, np.exp(log_e), 0.0)
        tail_start = np.zeros(b, np.int64)
        frac = float(self.config["tail_energy_fraction"])
        for row in range(b):  # first cell of the tail holding the last `frac` of the energy
            n = counts[row]
            remaining = np.cumsum(energy[row, :n][::-1])[::-1]
            tail_start[row] = int(np.argmax(remaining <= frac * remaining[0])) if np.any(remaining <= frac * remaining[0]) else n
        feats = self._token_features(in_layer, in_loge, energies[index], theta[index], tokens.delta[index])
        to = lambda a: torch.as_tensor(a, device=self.torch_device)  # noqa: E731
        positions = np.arange(t_len)[None, :]
        return {
            "in_layer": to(in_layer), "in_v": to(in_v), "in_u": to(in_u), "feats": to(feats),
            "cond": to(self._cond_vector(energies[index], theta[index])),
            "position": to(np.broadcast_to(positions, (b, t_len)).copy()),
            "layer": to(np.where(valid_cell, layer, 0)), "v": to(np.where(valid_cell, v, 0)),
            "u": to(np.where(valid_cell, u, 0)), "e_bin": to(e_bin), "energy": to(energy.astype(np.float32)),
            "valid_cell": to(valid_cell), "valid_tok": to(np.arange(t_len)[None, :] <= counts[:, None]),
            "eos": to((np.arange(t_len)[None, :] == counts[:, None]).astype(np.float32)),
            "tail": to((np.arange(t_len)[None, :] >= tail_start[:, None]).astype(np.float32)),
            "e_inc": to(energies[index].astype(np.float32)),
        }

    def _token_features(self, in_layer, in_loge, energies, theta, delta) -> np.ndarray:
        """(B, T, 8) per-token scalars: cells so far / 1000, energy so far / E_inc, ln E of the
        previous cell (scaled), is-BOS, and the axis offset inside its pad (u, v) in the previous
        and the next layer."""
        b, t_len = in_layer.shape
        edges = self._energy_edges()
        bos = in_layer == self.n_det_layers
        prev_e = np.where(bos, 0.0, np.exp(in_loge))
        cum_e = np.cumsum(prev_e, axis=1) / energies[:, None]
        scaled_e = np.where(bos, 0.0, (in_loge - edges[0]) / (edges[-1] - edges[0]))
        _, fu, fv = axis_frame(self.frame, theta, delta)
        cur = np.where(bos, 0, in_layer)
        nxt = np.minimum(cur + 1, self.n_det_layers - 1)
        rows = np.arange(b)[:, None]
        out = np.stack([np.broadcast_to(np.arange(t_len) / 1000.0, (b, t_len)), cum_e, scaled_e, bos,
                        fu[rows, cur], fv[rows, cur], fu[rows, nxt], fv[rows, nxt]], axis=-1)
        return out.astype(np.float32)

    # ---- losses --------------------------------------------------------------------
    def _losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.config
        net = self.net
        h = net.trunk(net.embed(batch["in_layer"], batch["in_v"], batch["in_u"], batch["feats"],
                                batch["cond"], batch["position"]))
        prev_layer = torch.where(batch["in_layer"] == self.n_det_layers, -1, batch["in_layer"])
        layer_mask, v_mask, u_mask = _order_masks(prev_layer, batch["in_v"], batch["in_u"], self.size,
                                                  self.n_det_layers)
        layer, v, u = batch["layer"], batch["v"], batch["u"]
        eos_logits = net.head_eos(h)
        lg_layer = _masked(net.layer_logits(h, prev_layer), layer_mask)
        h1 = h + net.next_layer(layer)
        lg_v = _masked(net.v_logits(h1, layer, prev_layer, batch["in_v"]), v_mask(layer))
        h2 = h1 + net.next_v(v)
        lg_u = _masked(net.u_logits(h2, layer, v, prev_layer, batch["in_v"], batch["in_u"]), u_mask(layer, v))
        h3 = h2 + net.next_u(u)
        lg_e = net.head_e(h3)
        vc = batch["valid_cell"].float()
        vt = batch["valid_tok"].float()
        n_tok = vt.sum()
        ce = lambda lg, y: F.cross_entropy(lg.transpose(1, 2), y, reduction="none")  # noqa: E731
        nll_cells = (ce(lg_layer, layer) + ce(lg_v, v) + ce(lg_u, u) + ce(lg_e, batch["e_bin"])) * vc
        nll_eos = F.binary_cross_entropy_with_logits(eos_logits[..., 0], batch["eos"], reduction="none") * vt
        nll = (nll_cells.sum() + nll_eos.sum()) / n_tok
        tail = F.binary_cross_entropy_with_logits(
            eos_logits[..., 1], batch["tail"], reduction="none",
            pos_weight=torch.tensor(float(c["tail_pos_weight"]), device=h.device))
        tail = (tail * vt).sum() / n_tok
        # seed losses on the predicted distributions (teacher forcing)
        probs = [torch.softmax(lg, -1) * vc[..., None] for lg in (lg_layer, lg_v, lg_u, lg_e)]
        targets = [F.one_hot(y, k).float() * vc[..., None]
                   for y, k in ((layer, self.n_det_layers), (v, self.size), (u, self.size),
                                (batch["e_bin"], net.energy_bins))]
        js = torch.stack([_js(p.sum(1), q.sum(1)) for p, q in zip(probs, targets)]).mean()
        edges = torch.as_tensor(self._energy_edges(), dtype=torch.float32, device=h.device)
        width = edges[1] - edges[0]
        bin_mean = (torch.exp(edges[1:]) - torch.exp(edges[:-1])) / width  # mean E over a bin in ln E
        e_pred = (probs[3] * bin_mean).sum(-1)  # (B, T) expected energy per cell
        e_true = batch["energy"]
        e_inc = batch["e_inc"]
        energy_loss = (((e_pred.sum(1) - e_true.sum(1)) / e_inc) ** 2).mean()
        scales = (self.n_det_layers - 1, self.size - 1, self.size - 1)
        pos_pred = torch.stack([(p * torch.arange(p.shape[-1], device=h.device)).sum(-1) / s
                                for p, s in zip(probs[:3], scales)], -1)
        pos_true = torch.stack([y.float() / s for y, s in zip((layer, v, u), scales)], -1)
        c_pred = (e_pred[..., None] * pos_pred).sum(1) / e_pred.sum(1, keepdim=True).clamp_min(1e-6)
        c_true = (e_true[..., None] * pos_true).sum(1) / e_true.sum(1, keepdim=True).clamp_min(1e-6)
        center_loss = ((c_pred - c_true) ** 2).sum(-1).mean()
        total = (nll + c["js_weight"] * js + c["energy_weight"] * energy_loss
                 + c["center_weight"] * center_loss + c["tail_weight"] * tail)
        return {"loss": total, "nll": nll, "js": js, "energy": energy_loss, "center": center_loss, "tail": tail}

    # ---- training ------------------------------------------------------------------
    def _prepare(self, train: ShowerSet) -> tuple[Tokens, np.ndarray, np.ndarray, np.ndarray, dict]:
        cl = train.showers
        if not isinstance(cl, CellList):
            raise CalobenchError(f"model {self.name}: expected point-cloud showers (CellList), found {type(cl).__name__}")
        if len(train) == 0:
            raise CalobenchError(f"model {self.name}: the training sample is empty")
        _, _, phi = self._conditions(train.energies, train.conditions, "training sample")
        self.frame = fit_frame(self.geometry, cl.cells, cl.offsets, phi)
        tokens, energies, theta, phi = self._encode_set(train)
        log_e = tokens.log_e.astype(np.float64)
        lo = min(float(log_e.min()), math.log(max(self.geometry.threshold, 1e-6)))
        hi = float(log_e.max()) + 1e-3
        self.extra = {**self.frame.as_arrays(),
                      "energy_edges": np.linspace(lo, hi, int(self.config["energy_bins"]) + 1)}
        max_cells = int(self.config["max_cells"])
        keep = tokens.counts <= max_cells
        self._init_output_biases(tokens)
        info = {"train_showers": int(len(train)), "cells_outside_window_fraction":
                float(tokens.dropped.sum() / max(1, tokens.dropped.sum() + tokens.counts.sum())),
                "showers_over_max_cells": int((~keep).sum()), "pad_residual_mm": self.frame.residual}
        return tokens, energies, theta, phi, info

    def _init_output_biases(self, tokens: Tokens) -> None:
        """Start every output at the training marginals (log frequencies): the stop hazard at
        1 / (mean length), the layer step, the row / column steps and absolute positions and the
        energy bins at their observed rates, so that rare choices (skipping layers) start rare."""
        net, size, n_layers = self.net, self.size, self.n_det_layers
        starts = tokens.offsets[:-1][tokens.counts > 0]
        first = np.zeros(len(tokens.layer), bool)
        first[starts] = True
        prev_layer = np.where(first, -1, np.roll(tokens.layer, 1))
        prev_v, prev_u = np.roll(tokens.v, 1), np.roll(tokens.u, 1)
        same_layer = tokens.layer == prev_layer
        same_row = same_layer & (tokens.v == prev_v)
        edges = self._energy_edges()
        e_bin = np.clip(np.floor((tokens.log_e - edges[0]) / (edges[1] - edges[0])), 0, len(edges) - 2).astype(int)

        def log_freq(values: np.ndarray, n: int) -> torch.Tensor:
            freq = np.bincount(values, minlength=n)[:n] + 0.01
            return torch.as_tensor(np.log(freq / freq.sum()), dtype=torch.float32)

        with torch.no_grad():
            mean_len = float(max(1.0, tokens.counts.mean()))
            net.head_eos.bias[0] = -math.log(mean_len)
            net.head_eos.bias[1] = -math.log(max(1.0, mean_len / 20.0))
            net.head_layer.bias.copy_(log_freq(tokens.layer - prev_layer, n_layers + 1))
            v_bias = torch.cat([log_freq(tokens.v[~same_layer], size), log_freq((tokens.v - prev_v)[same_layer], size)])
            u_bias = torch.cat([log_freq(tokens.u[~same_row], size), log_freq((tokens.u - prev_u)[same_row], size)])
            net.head_v[-1].bias.copy_(v_bias)
            net.head_u[-1].bias.copy_(u_bias)
            net.head_e[-1].bias.copy_(log_freq(e_bin, net.energy_bins))

    def _batches(self, order_rng: np.random.Generator, counts: np.ndarray, index: np.ndarray) -> list[np.ndarray]:
        """One epoch of length-bucketed batches: shuffle, sort chunks of 8 batches by length,
        shuffle the batches. With ``steps_per_epoch`` > 0 an epoch is that many batches drawn
        from as many passes over the data as needed (compute independent of the sample size)."""
        bs = int(self.config["batch_size"])
        steps = int(self.config.get("steps_per_epoch", 0))
        passes = 1 if steps <= 0 else max(1, math.ceil(steps * bs / max(1, len(index))))
        batches = []
        for _ in range(passes):
            perm = order_rng.permutation(index)
            part = []
            for start in range(0, len(perm), 8 * bs):
                chunk = perm[start:start + 8 * bs]
                chunk = chunk[np.argsort(counts[chunk], kind="stable")]
                part += [chunk[i:i + bs] for i in range(0, len(chunk), bs)]
            batches += [part[i] for i in order_rng.permutation(len(part))]
        return batches if steps <= 0 else batches[:steps]

    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        c = self.config
        epochs = int(c["epochs"] if epochs is None else epochs)
        n_max = int(c["max_train_showers"])
        if n_max and len(train) > n_max:
            train = train.take(np.sort(np.random.default_rng(self.seed).choice(len(train), n_max, replace=False)))
        tokens, energies, theta, phi, info = self._prepare(train)
        usable = np.flatnonzero(tokens.counts <= int(c["max_cells"]))
        valid_data = None
        if valid is not None and len(valid):
            nv = min(len(valid), int(c["valid_showers"]))
            valid_data = self._encode_set(valid.take(np.arange(nv)), "validation sample")
        torch.manual_seed(self.seed)
        opt = torch.optim.AdamW(self.net.parameters(), lr=float(c["lr"]), weight_decay=float(c["weight_decay"]))
        n_batches = len(self._batches(np.random.default_rng(0), tokens.counts, usable))
        total_steps = max(1, epochs * n_batches)
        warm = int(c["warmup_steps"])
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / max(1, warm)) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total_steps))))
        self.fitted = True

        def step(index: np.ndarray) -> dict[str, float]:
            losses = self._losses(self._batch(tokens, energies, theta, phi, index))
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), float(c["grad_clip"]))
            opt.step()
            sched.step()
            return {k: float(v.detach()) for k, v in losses.items()}

        def validate(epoch: int) -> dict:
            return {"valid_nll": self.validation_nll(*valid_data)}

        trainer = Trainer(self, {"adamw": opt}, schedulers={"lr": sched}, checkpoint_dir=checkpoint_dir,
                          resume=resume, progress=progress)
        history = trainer.run(epochs, lambda epoch: self._batches(np.random.default_rng([self.seed, epoch]),
                                                                  tokens.counts, usable),
                              step, end_epoch=validate if valid_data is not None else None)
        return {**history, **info, "parameters": self.parameter_count()}

    @torch.no_grad()
    def validation_nll(self, tokens: Tokens, energies, theta, phi) -> float:
        """Teacher-forced negative log-likelihood per token on encoded showers."""
        self.net.eval()
        index = np.flatnonzero(tokens.counts <= int(self.config["max_cells"]))
        total, n = 0.0, 0
        for start in range(0, len(index), int(self.config["batch_size"])):
            batch = self._batch(tokens, energies, theta, phi, index[start:start + int(self.config["batch_size"])])
            total += float(self._losses(batch)["nll"]) * float(batch["valid_tok"].sum())
            n += int(batch["valid_tok"].sum())
        return total / max(1, n)

    # ---- generation ----------------------------------------------------------------
    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        if not self.fitted:
            raise CalobenchError(f"model {self.name}: call fit() or load a trained model before sample()")
        energies, theta, phi = self._conditions(energies, conditions, "sample")
        gen = torch.Generator(device=self.torch_device)
        gen.manual_seed(self.seed)
        delta = self.frame.sample_delta(np.random.default_rng(self.seed), len(energies))
        parts = []
        for start in range(0, len(energies), max(1, int(batch_size))):
            sl = slice(start, start + max(1, int(batch_size)))
            parts.append(self._generate(energies[sl], theta[sl], phi[sl], delta[sl], gen))
        cells = CellList.concatenate(parts) if parts else CellList(np.zeros((0, 4), np.float32), np.zeros(1, np.int64))
        return ShowerSet(self.geometry, energies, cells, conditions={"theta": theta, "phi": phi},
                         particle="gamma", dataset=self.dataset.name,
                         provenance={"generator": self.name, "preset": self.preset, "seed": self.seed})

    @torch.no_grad()
    def _generate(self, energies: np.ndarray, theta: np.ndarray, phi: np.ndarray, delta: np.ndarray,
                  gen: torch.Generator) -> CellList:
        """All showers of the batch step together; returns their cells (global frame)."""
        self.net.eval()
        net, dev = self.net, self.torch_device
        b = len(energies)
        max_cells = int(self.config["max_cells"])
        edges = torch.as_tensor(self._energy_edges(), dtype=torch.float32, device=dev)
        width = edges[1] - edges[0]
        _, fu_np, fv_np = axis_frame(self.frame, theta, delta)
        fu = torch.as_tensor(fu_np, dtype=torch.float32, device=dev)
        fv = torch.as_tensor(fv_np, dtype=torch.float32, device=dev)
        cond = torch.as_tensor(self._cond_vector(energies, theta), device=dev)
        e_inc = torch.as_tensor(energies, dtype=torch.float32, device=dev)
        rows = torch.arange(b, device=dev)
        out_layer = torch.zeros(b, max_cells, dtype=torch.int64, device=dev)
        out_v, out_u = torch.zeros_like(out_layer), torch.zeros_like(out_layer)
        out_loge = torch.zeros(b, max_cells, dtype=torch.float32, device=dev)
        prev_layer = torch.full((b,), self.n_det_layers, dtype=torch.int64, device=dev)
        prev_v = torch.full((b,), self.size, dtype=torch.int64, device=dev)
        prev_u = torch.full((b,), self.size, dtype=torch.int64, device=dev)
        prev_loge = torch.zeros(b, device=dev)
        cum_e = torch.zeros(b, device=dev)
        alive = torch.ones(b, dtype=torch.bool, device=dev)
        count = torch.zeros(b, dtype=torch.int64, device=dev)
        caches: list[dict] = [{} for _ in net.blocks]

        def gumbel_pick(logits: torch.Tensor) -> torch.Tensor:
            noise = torch.rand(logits.shape, generator=gen, device=dev).clamp_(1e-10, 1.0)
            return torch.argmax(logits - torch.log(-torch.log(noise)), dim=-1)

        for t in range(max_cells + 1):
            bos = prev_layer == self.n_det_layers
            cur = torch.where(bos, 0, prev_layer)
            nxt = (cur + 1).clamp_max(self.n_det_layers - 1)
            feats = torch.stack([
                torch.full((b,), t / 1000.0, device=dev), cum_e / e_inc,
                torch.where(bos, 0.0, (prev_loge - edges[0]) / (edges[-1] - edges[0])), bos.float(),
                fu[rows, cur], fv[rows, cur], fu[rows, nxt], fv[rows, nxt]], dim=-1)[:, None, :]
            x = net.embed(prev_layer[:, None], prev_v[:, None], prev_u[:, None], feats, cond,
                          torch.full((b, 1), t, device=dev))
            h = net.trunk_step(x, caches, t)[:, 0]
            p_stop = torch.sigmoid(net.head_eos(h)[:, 0])
            stop = torch.rand(b, generator=gen, device=dev) < p_stop
            if t == 0:
                stop[:] = False
            pl = torch.where(bos, -1, prev_layer)
            layer_mask, v_mask, u_mask = _order_masks(pl, prev_v, prev_u, self.size, self.n_det_layers)
            stop |= ~layer_mask.any(-1)  # raster order exhausted
            if t == max_cells:
                stop[:] = True
            alive &= ~stop
            # reading ``alive`` on the host waits for the device: on an accelerator only every
            # ALIVE_CHECK steps (the extra steps change nothing: stopped showers keep their cells)
            if (dev.type == "cpu" or t % ALIVE_CHECK == 0 or t == max_cells) and not bool(alive.any()):
                break
            layer = gumbel_pick(_masked(net.layer_logits(h, pl), layer_mask))
            h1 = h + net.next_layer(layer)
            v = gumbel_pick(_masked(net.v_logits(h1, layer, pl, prev_v), v_mask(layer)))
            h2 = h1 + net.next_v(v)
            u = gumbel_pick(_masked(net.u_logits(h2, layer, v, pl, prev_v, prev_u), u_mask(layer, v)))
            h3 = h2 + net.next_u(u)
            e_bin = gumbel_pick(net.head_e(h3))
            log_e = edges[0] + (e_bin.float() + torch.rand(b, generator=gen, device=dev)) * width
            out_layer[:, t], out_v[:, t], out_u[:, t], out_loge[:, t] = layer, v, u, log_e
            count += alive.long()
            keep = alive
            prev_layer = torch.where(keep, layer, prev_layer)
            prev_v = torch.where(keep, v, prev_v)
            prev_u = torch.where(keep, u, prev_u)
            prev_loge = torch.where(keep, log_e, prev_loge)
            cum_e = cum_e + torch.where(keep, torch.exp(log_e), 0.0)
        counts = count.cpu().numpy()
        valid = (torch.arange(max_cells, device=dev)[None, :] < count[:, None]).cpu().numpy()
        layer_np = out_layer.cpu().numpy()[valid]
        v_np, u_np = out_v.cpu().numpy()[valid], out_u.cpu().numpy()[valid]
        energy = np.exp(out_loge.cpu().numpy()[valid].astype(np.float64))
        event = np.repeat(np.arange(b), counts)
        cells = decode(self.frame, layer_np, v_np, u_np, energy, event, theta, phi, delta,
                       int(self.config["half_window"]), float(self.geometry.barrel.half_length))
        offsets = np.zeros(b + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return CellList(cells, offsets)
