"""ddpm-unet: a denoising diffusion model with a conditional U-Net for 11x11 crystal images (seed 004).

The U-Net generates the normalised hit map (E_cell / E_tot) of the 11x11 crystals; the total
energy comes from a separate conditional Gaussian-mixture MLP on E_tot / E_inc. Both see the
dataset's conditions (log E_inc and the rest standardised, the particle type one-hot).

Hit-map encoding: u = 2 (E_cell / E_tot)^(1/4) - 1 in [-1, 1] (the fourth root spreads the
small cells without the blow-up of a log), padded to 12x12 with the
"empty" value -1. The U-Net predicts the noise (epsilon parameterisation) of a cosine-schedule
DDPM with ``diffusion_steps`` steps (400, as in the seed). Sampling uses an exponential moving
average of the U-Net weights (``ema`` decay), kept as the network ``ema``.

Sampling (config keys, settable at sample time, e.g. ``model.config["sampler"] = "ddim"``):
  sampler: "ancestral" (the DDPM reverse chain) or "ddim" (deterministic DDIM, eta = 0);
  sample_steps: number of network evaluations (ancestral: a strided sub-chain when fewer
  than diffusion_steps).
Generated cells below the geometry's readout threshold are set to zero; energies >= 0.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from calobench.baselines.diffusion.layers import ConditionalGMM
from calobench.baselines.diffusion.schedules import cosine_alphas_bar
from calobench.data.showerset import ShowerSet
from calobench.errors import CalobenchError
from calobench.models.common.conditioning import ConditionEncoder
from calobench.models.common.layers import sinusoidal_embedding
from calobench.models.common.trainer import Trainer, shuffled_batches
from calobench.models.torch_base import TorchGenerator

POWER = 4.0  # hit-map encoding u = 2 (E/E_tot)^(1/POWER) - 1
SIDE = 11
PAD = 12


def encode_maps(fractions: np.ndarray) -> np.ndarray:
    """(N, 121) fractions E/E_tot -> (N, 1, 12, 12) u = 2 x^(1/4) - 1 in [-1, 1] (padding = -1)."""
    u = 2.0 * np.clip(fractions, 0.0, 1.0) ** (1.0 / POWER) - 1.0
    out = np.full((len(fractions), 1, PAD, PAD), -1.0, dtype=np.float32)
    out[:, 0, :SIDE, :SIDE] = u.reshape(-1, SIDE, SIDE)
    return out


def decode_maps(u: torch.Tensor) -> torch.Tensor:
    """(N, 1, 12, 12) -> (N, 121) non-negative fractions summing to one (where not empty)."""
    u = u[:, 0, :SIDE, :SIDE].reshape(len(u), -1).clamp(-1.0, 1.0)
    frac = ((u + 1.0) / 2.0) ** POWER
    total = frac.sum(1, keepdim=True)
    return torch.where(total > 0, frac / total.clamp(min=1e-12), frac)


def _scalar(value) -> float:
    return float(np.asarray(value).reshape(-1)[0])


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with a scale/shift from the embedding."""

    def __init__(self, c_in: int, c_out: int, emb: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * c_out)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    """Self-attention over the pixels of a small feature map."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(8, channels), channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        out, _ = self.attn(seq, seq, seq, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    """Conditional U-Net on (B, 1, 12, 12): 12 -> 6 -> 3 and back, attention at the bottom."""

    def __init__(self, n_cond: int, base: int, mults: tuple[int, ...], blocks: int, dropout: float) -> None:
        super().__init__()
        emb = 4 * base
        self.base = base
        self.time_mlp = nn.Sequential(nn.Linear(base, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.cond_mlp = nn.Sequential(nn.Linear(n_cond, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv2d(1, base, 3, padding=1)
        chans = [base * m for m in mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [base]
        c = base
        for level, ch in enumerate(chans):
            level_blocks = nn.ModuleList()
            for _ in range(blocks):
                level_blocks.append(ResBlock(c, ch, emb, dropout))
                c = ch
                skips.append(c)
            self.down.append(level_blocks)
            if level < len(chans) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid1 = ResBlock(c, c, emb, dropout)
        self.mid_attn = Attention(c)
        self.mid2 = ResBlock(c, c, emb, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, ch in reversed(list(enumerate(chans))):
            level_blocks = nn.ModuleList()
            for _ in range(blocks + 1):
                level_blocks.append(ResBlock(c + skips.pop(), ch, emb, dropout))
                c = ch
            self.up.append(level_blocks)
            if level > 0:
                self.upsample.append(nn.ConvTranspose2d(c, c, 4, stride=2, padding=1))
        self.out = nn.Sequential(nn.GroupNorm(min(8, c), c), nn.SiLU(), nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(sinusoidal_embedding(t, self.base)) + self.cond_mlp(cond)
        h = self.inp(x)
        hs = [h]
        for level, level_blocks in enumerate(self.down):
            for block in level_blocks:
                h = block(h, emb)
                hs.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for level, level_blocks in enumerate(self.up):
            for block in level_blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if level < len(self.upsample):
                h = self.upsample[level](h)
        return self.out(h)


class DDPMUNet(TorchGenerator):
    """Conditional DDPM U-Net for the hit map plus a Gaussian-mixture MLP for E_tot / E_inc."""

    name = "ddpm-unet"
    family = "diffusion"
    seed_document = "004"
    datasets = ("bes3-11x11", "stcf11x11")
    description = "DDPM with a conditional U-Net on the normalised 11x11 hit map; E_tot from a conditional GMM"
    presets = {
        "tiny": {"base": 8, "mults": [1, 2], "blocks": 1, "dropout": 0.0, "diffusion_steps": 50,
                 "epochs": 2, "batch_size": 64, "lr": 2e-3, "gmm_hidden": 16, "gmm_components": 2,
                 "sampler": "ddim", "sample_steps": 5, "max_train": 2000, "ema": 0.5},
        "quick": {"base": 24, "mults": [1, 2, 2], "blocks": 1, "dropout": 0.0, "diffusion_steps": 400,
                  "epochs": 30, "batch_size": 64, "lr": 2e-3, "gmm_hidden": 64, "gmm_components": 5,
                  "sampler": "ddim", "sample_steps": 25, "max_train": 4000, "ema": 0.995},
        "full": {"base": 72, "mults": [1, 2, 2], "blocks": 2, "dropout": 0.1, "diffusion_steps": 400,
                 "epochs": 200, "batch_size": 256, "lr": 2e-4, "gmm_hidden": 128, "gmm_components": 8,
                 "sampler": "ancestral", "sample_steps": 400, "max_train": 0, "ema": 0.9995},
    }

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        cfg = self.config
        self.encoder = ConditionEncoder(self.dataset)
        n_cond = self.encoder.n_features
        self.unet = UNet(n_cond, int(cfg["base"]), tuple(int(m) for m in cfg["mults"]), int(cfg["blocks"]),
                         float(cfg["dropout"])).to(self.torch_device)
        self.ema = copy.deepcopy(self.unet)
        self.ema.requires_grad_(False)
        self.energy = ConditionalGMM(n_cond, int(cfg["gmm_hidden"]), int(cfg["gmm_components"])).to(self.torch_device)
        alpha_bar = cosine_alphas_bar(int(cfg["diffusion_steps"]))
        self.alpha_bar = torch.tensor(alpha_bar, dtype=torch.float32, device=self.torch_device)

    def after_move(self) -> None:
        self.alpha_bar = self.alpha_bar.to(self.torch_device)

    def networks(self) -> dict[str, nn.Module]:
        return {"unet": self.unet, "ema": self.ema, "energy": self.energy}

    def generation_networks(self) -> list[str]:
        return ["ema", "energy"]

    def after_load(self) -> None:
        self.encoder.load(self.extra)

    # ---- data ----------------------------------------------------------------------
    def _prepare(self, data: ShowerSet, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoded maps (N, 1, 12, 12), conditions (N, k) and standardised E_tot / E_inc (N,) of the
        non-empty showers of a sample."""
        energies, conditions = self.encoder.check(data.energies, data.conditions, what)
        showers = np.asarray(data.showers, dtype=np.float64)
        if showers.shape[1] != SIDE * SIDE:
            raise CalobenchError(f"ddpm-unet: expected showers with {SIDE * SIDE} cells, found {showers.shape[1]}")
        e_tot = showers.sum(1)
        keep = e_tot > 0
        showers, e_tot = showers[keep], e_tot[keep]
        energies = energies[keep]
        cond = self.encoder.encode(energies, {k: v[keep] for k, v in conditions.items()})
        maps = encode_maps(showers / e_tot[:, None])
        ratio = (e_tot / energies - _scalar(self.extra["ratio_mean"])) / _scalar(self.extra["ratio_std"])
        return torch.from_numpy(maps), torch.from_numpy(cond), torch.from_numpy(ratio.astype(np.float32))

    # ---- training ------------------------------------------------------------------
    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        cfg = self.config
        if int(cfg.get("max_train", 0)) and len(train) > int(cfg["max_train"]):
            train = train.slice(0, int(cfg["max_train"]))
        energies, conditions = self.encoder.check(train.energies, train.conditions, "training sample")
        e_tot = train.total_energy()
        ok = e_tot > 0
        if not ok.any():
            raise CalobenchError("ddpm-unet: every training shower is empty")
        self.extra = self.encoder.fit(energies[ok], {k: v[ok] for k, v in conditions.items()})
        ratio = e_tot[ok] / energies[ok]
        self.extra["ratio_mean"] = np.array([ratio.mean()])
        self.extra["ratio_std"] = np.array([max(ratio.std(), 1e-6)])
        maps, cond, ratio_t = self._prepare(train, "training sample")
        valid_data = self._prepare(valid, "validation sample") if valid is not None and len(valid) else None
        epochs = int(cfg["epochs"] if epochs is None else epochs)
        opt_unet = torch.optim.Adam(self.unet.parameters(), lr=float(cfg["lr"]))
        opt_energy = torch.optim.Adam(self.energy.parameters(), lr=1e-3)
        alpha_bar = self.alpha_bar.to(self.torch_device)
        steps = len(alpha_bar)
        dev = self.torch_device
        decay = float(cfg.get("ema", 0.0))
        self.ema.load_state_dict(self.unet.state_dict())

        def losses(x0, c, r, generator):
            t = torch.randint(0, steps, (len(x0),), generator=generator)
            noise = torch.randn(x0.shape, generator=generator)
            x0, c, r, t, noise = x0.to(dev), c.to(dev), r.to(dev), t.to(dev), noise.to(dev)
            ab = alpha_bar[t][:, None, None, None]
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
            return F.mse_loss(self.unet(xt, t, c), noise), self.energy.nll(r, c)

        def step(idx: torch.Tensor) -> dict[str, float]:
            loss, loss_e = losses(maps[idx], cond[idx], ratio_t[idx], self.rng)
            opt_unet.zero_grad()
            opt_energy.zero_grad()
            (loss + loss_e).backward()
            torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
            opt_unet.step()
            opt_energy.step()
            with torch.no_grad():
                for p_ema, p in zip(self.ema.parameters(), self.unet.parameters()):
                    p_ema.lerp_(p, 1.0 - decay)
            return {"loss": float(loss.detach()), "energy_nll": float(loss_e.detach())}

        def validate(epoch: int) -> dict:
            with torch.no_grad():
                vgen = torch.Generator().manual_seed(12345)
                m = min(2000, len(valid_data[0]))
                v, ve = losses(valid_data[0][:m], valid_data[1][:m], valid_data[2][:m], vgen)
            return {"valid_loss": float(v), "valid_energy_nll": float(ve)}

        trainer = Trainer(self, {"unet": opt_unet, "energy": opt_energy}, checkpoint_dir=checkpoint_dir,
                          resume=resume, progress=progress)
        history = trainer.run(epochs, lambda epoch: shuffled_batches(len(maps), int(cfg["batch_size"]), self.rng),
                              step, end_epoch=validate if valid_data is not None else None)
        history["train_events"] = int(len(maps))
        return history

    # ---- sampling ------------------------------------------------------------------
    def _timesteps(self, n_steps: int) -> list[int]:
        total = len(self.alpha_bar)
        n_steps = max(1, min(int(n_steps), total))
        return sorted({int(round(v)) for v in np.linspace(total - 1, 0, n_steps)}, reverse=True)

    @torch.no_grad()
    def _denoise(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        sampler = self.config.get("sampler", "ddim")
        if sampler not in ("ancestral", "ddim"):
            raise CalobenchError(f"ddpm-unet: config key 'sampler': expected 'ancestral' or 'ddim', found {sampler!r}")
        alpha_bar = self.alpha_bar.to(self.torch_device)
        steps = self._timesteps(int(self.config.get("sample_steps", len(alpha_bar))))
        x = torch.randn((len(cond), 1, PAD, PAD), device=self.torch_device, generator=generator)
        for i, t in enumerate(steps):
            prev = steps[i + 1] if i + 1 < len(steps) else -1
            ab = alpha_bar[t]
            ab_prev = alpha_bar[prev] if prev >= 0 else torch.tensor(1.0, device=self.torch_device)
            tt = torch.full((len(cond),), t, device=self.torch_device, dtype=torch.long)
            eps = self.ema(x, tt, cond)
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1.0, 1.0)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            if sampler == "ddim":
                x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
            else:  # ancestral step of the (possibly strided) chain, posterior variance beta-tilde
                beta = 1 - ab / ab_prev
                mean = (ab_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - ab_prev) * x) / (1 - ab)
                if prev >= 0:
                    var = beta * (1 - ab_prev) / (1 - ab)
                    x = mean + var.sqrt() * torch.randn(x.shape, device=x.device, generator=generator)
                else:
                    x = mean
        return x

    @torch.no_grad()
    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        if "cond_mean" not in self.extra:
            raise CalobenchError("ddpm-unet: the model is not trained (call fit or load a saved model)")
        energies, conditions = self.encoder.check(energies, conditions, "sample")
        cond_all = self.encoder.encode(energies, conditions)
        generator = torch.Generator(device=self.torch_device).manual_seed(self.seed)
        threshold = self.dataset.geometry.threshold
        self.ema.eval()
        self.energy.eval()
        dev = self.torch_device
        # inputs go to the device once and the showers come back once (no copy per batch)
        cond_dev = torch.from_numpy(cond_all).to(dev)
        e_inc_all = torch.as_tensor(energies, dtype=torch.float32, device=dev)
        result = torch.zeros((len(energies), SIDE * SIDE), dtype=torch.float32, device=dev)
        for start in range(0, len(energies), max(1, int(batch_size))):
            stop = min(start + int(batch_size), len(energies))
            cond = cond_dev[start:stop]
            ratio = self.energy.sample(cond, generator) * _scalar(self.extra["ratio_std"]) + _scalar(self.extra["ratio_mean"])
            e_tot = ratio.clamp(min=0.0) * e_inc_all[start:stop]
            cells = decode_maps(self._denoise(cond, generator)) * e_tot[:, None]
            result[start:stop] = torch.where(cells >= threshold, cells, torch.zeros_like(cells))
        out = result.cpu().numpy()
        provenance = {"generator": self.name, "preset": self.preset, "seed": self.seed,
                      "sampler": self.config.get("sampler"), "sample_steps": int(self.config.get("sample_steps", 0))}
        particle = ",".join(self.dataset.particles)
        return ShowerSet(self.dataset.geometry, energies, out, conditions, particle, provenance, self.dataset.name)
