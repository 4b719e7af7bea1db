"""dcgan: the STCF ECAL-GAN of seed 001 (conditional DCGAN + pre-trained regressor).

What the seed describes and how it is built here:
- showers are 11x11 crystal images centred on the hit crystal; the generator, the
  discriminator and the regressor are convolutional networks, all conditioned on the
  event's features y (incident energy and the six conditions p, dtheta_mom, dphi_mom,
  dz_pos, dphi_pos, z for stcf11x11);
- a regressor is pre-trained on the reference to predict (p, dtheta_mom, dphi_mom) from the
  image and the position features (dz_pos, dphi_pos, z); the generator loss is
  ``BCE(D(G(z, y)), real) + lambda * |y_1 - R(G(z, y))|_1`` (seed, "ECAL-GAN" slide);
- the training is monitored by a chi2 = sum (O_i - E_i)^2 / E_i between the histograms of
  shower features (E_total, E_3x3, E_5x5, as in the seed's result slides) of generated and
  reference showers of the validation split (``chi2_monitor``); the history records it per
  epoch and the generator of the epoch with the lowest chi2 is kept (``keep_best``).

Representation: the generator produces the energy of each crystal per unit incident energy as
``response * softmax(logits)`` (see _Gen), so generated energies are positive by construction
and the response E_dep / E_inc is one explicit output; the geometry's readout threshold is
applied (cells below it read zero) in training and at sampling. The discriminator and the
regressor see images as t = log1p(E / 1 MeV) / L (L = log1p of the largest training cell
energy); in its dense head the discriminator also gets the conditions and shape features
(log E_tot / E_inc, centroid and width in x and y, occupancy), so that the response
distribution and the dependence of the centroid on the impact position are learned directly.
Besides the softmax logits and the response, the generator's head gives a linear tilt of the
logits in x and y (moves the centroid with the conditions).
Training on CPU uses ``train_threads`` torch threads (1 in tiny and quick: the batches are
small, and on a shared or busy machine a second intra-op thread costs more in
synchronisation than it gains; 0 keeps torch's default). Generation uses torch's default.
Conditions are encoded as log E_inc and the continuous conditions (p and E as
sign(x) log(1 + |x|)), standardised with mean and std + 1e-6, and a one-hot ``particle``
(bes3-11x11). The regressor is trained first (``regressor_epochs``, a pre-training before the
GAN epochs); training runs through models/common/trainer.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from calobench.baselines.gan.chi2_monitor import feature_chi2, image_features
from calobench.data.showerset import ShowerSet
from calobench.errors import CalobenchError
from calobench.models.common.conditioning import ConditionEncoder, mean_std_plus_epsilon
from calobench.models.common.trainer import Trainer, shuffled_batches
from calobench.models.torch_base import TorchGenerator

SIDE = 11


class _Gen(nn.Module):
    """(noise, condition code) -> (N, 1, 11, 11) energy per unit incident energy (>= 0).

    A dense head maps noise and conditions to a (width, 6, 6) map, a stride-2 transposed
    convolution brings it to 11x11 and a 3x3 convolution to one channel of logits. The image
    is ``response * softmax(logits)``: the softmax gives the share of each crystal (positive,
    summing to one) and a second output of the head the response E_dep / E_inc in (0, 1.5).
    """

    def __init__(self, n_noise: int, n_cond: int, width: int, hidden: int) -> None:
        super().__init__()
        self.width = width
        self.body = nn.Sequential(nn.Linear(n_noise + n_cond, hidden), nn.LeakyReLU(0.2))
        self.to_map = nn.Sequential(nn.Linear(hidden, width * 6 * 6), nn.LeakyReLU(0.2))
        self.to_response = nn.Linear(hidden, 1)
        self.to_tilt = nn.Linear(hidden, 2)  # linear slope of the logits in x and y: moves the centroid
        self.register_buffer("coords", _coordinates(), persistent=False)
        self.up = nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1)  # 6x6 -> 11x11
        self.out = nn.Conv2d(width // 2, 1, 3, padding=1)
        #: learned per-crystal offset of the logits, initialised from the training sample's
        #: mean log share per crystal (so training starts from the average shower shape)
        self.prior = nn.Parameter(torch.zeros(SIDE * SIDE))

    def init_from_data(self, mean_share: np.ndarray, mean_response: float) -> None:
        """Start from the average shower: prior = log(mean share), response bias = mean response."""
        with torch.no_grad():
            self.prior.copy_(torch.from_numpy(np.log(np.maximum(mean_share, 1e-7)).astype(np.float32)))
            r = min(max(mean_response / 1.5, 0.01), 0.99)
            self.to_response.bias.fill_(math.log(r / (1 - r)))

    def forward(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.body(torch.cat([noise, cond], dim=1))
        m = self.to_map(h).view(-1, self.width, 6, 6).contiguous(memory_format=torch.channels_last)
        logits = self.out(F.leaky_relu(self.up(m), 0.2)).flatten(1) + self.prior + self.to_tilt(h) @ self.coords
        response = 1.5 * torch.sigmoid(self.to_response(h))
        return (response * torch.softmax(logits, dim=1)).view(-1, 1, SIDE, SIDE)


def _coordinates() -> torch.Tensor:
    """(2, 121) crystal coordinates x, y in units of crystals from the centre (x fastest)."""
    c = torch.arange(SIDE, dtype=torch.float32) - SIDE // 2
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)])


def shape_features(energies: torch.Tensor, log_e: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """(N, 6) shower-shape summary given to the discriminator: log(E_tot / E_inc), centroid x and y
    and widths x and y (crystals), and the fraction of crystals above zero.

    energies: (N, 121) MeV; log_e: (N,) log incident energy; coords: (2, 121)."""
    total = energies.sum(dim=1)
    share = energies / (total[:, None] + 1e-6)
    centre = share @ coords.T
    second = share @ (coords ** 2).T
    width = torch.sqrt(torch.clamp(second - centre ** 2, min=0.0) + 1e-6)
    occupancy = (energies > 0).float().mean(dim=1, keepdim=True)
    return torch.cat([(torch.log(total + 1.0) - log_e)[:, None], centre, width, occupancy], dim=1)


def _encoder(width: int) -> nn.Sequential:
    """(N, 1, 11, 11) -> (N, 2 * width * 9): two stride-2 convolutions (11 -> 6 -> 3)."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Flatten(),
    )


class _Disc(nn.Module):
    """(image, condition code, shape features (N, 6)) -> real/fake logit."""

    def __init__(self, n_cond: int, width: int, hidden: int) -> None:
        super().__init__()
        self.conv = _encoder(width)
        self.head = nn.Sequential(nn.Linear(2 * width * 9 + n_cond + 6, hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(hidden, 1))

    def forward(self, image: torch.Tensor, cond: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.conv(image), cond, shape], dim=1)).squeeze(1)


class _Reg(nn.Module):
    """(image, position features, log E_tot) -> standardised regressed conditions."""

    def __init__(self, n_pos: int, n_out: int, width: int, hidden: int) -> None:
        super().__init__()
        self.conv = _encoder(width)
        self.head = nn.Sequential(nn.Linear(2 * width * 9 + n_pos + 1, hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(hidden, n_out))

    def forward(self, image: torch.Tensor, pos: torch.Tensor, log_etot: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.conv(image), pos, log_etot[:, None]], dim=1))


class DCGAN(TorchGenerator):
    """STCF ECAL-GAN: conditional DCGAN on 11x11 crystal images with an L1 regressor loss."""

    name = "dcgan"
    family = "gan"
    seed_document = "001"
    datasets = ("stcf11x11", "bes3-11x11")
    presets = {
        "tiny": {"train_threads": 1, "epochs": 2, "regressor_epochs": 1, "batch_size": 64, "noise": 8, "width": 8, "hidden": 32,
                 "d_width": 8, "lr": 3e-4, "reg_weight": 1.0, "keep_best": True, "max_train": 2000},
        "quick": {"train_threads": 1, "epochs": 25, "regressor_epochs": 2, "batch_size": 64, "noise": 16, "width": 12, "hidden": 64,
                  "d_width": 8, "lr": 3e-4, "reg_weight": 1.0, "keep_best": True, "max_train": 10000},
        "full": {"train_threads": 0, "epochs": 300, "regressor_epochs": 30, "batch_size": 256, "noise": 32, "width": 64, "hidden": 256,
                 "d_width": 64, "lr": 1e-4, "reg_weight": 1.0, "keep_best": True, "max_train": 0},
    }
    description = "STCF ECAL-GAN (seed 001): conditional DCGAN + pre-trained regressor, chi2 monitoring"

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        geometry = self.dataset.geometry
        if geometry.n_cells != SIDE * SIDE:
            raise CalobenchError(f"model dcgan needs 11x11 images; dataset {dataset} has {geometry.n_cells} cells")
        # the regressor predicts the momentum conditions from the image and the position conditions
        self.regressed, self.positions = self.dataset.momentum_conditions, self.dataset.position_conditions
        self.encoder = ConditionEncoder(self.dataset, signed_log=("p", "E"), stats=mean_std_plus_epsilon)
        n_cond = self.encoder.n_features
        c = self.config
        self.gen = _Gen(c["noise"], n_cond, c["width"], c["hidden"])
        self.disc = _Disc(n_cond, c["d_width"], c["hidden"])
        self.reg = _Reg(len(self.positions), len(self.regressed), c["d_width"], c["hidden"])
        for net in self.networks().values():
            net.to(self.torch_device)
        self.extra = self.encoder.state()

    def networks(self) -> dict[str, nn.Module]:
        return {"gen": self.gen, "disc": self.disc, "reg": self.reg}

    def generation_networks(self) -> list[str]:
        return ["gen"]

    # ---- encodings -------------------------------------------------------------------
    def after_load(self) -> None:
        self.encoder.load(self.extra)

    def _fit_normalisation(self, train: ShowerSet) -> None:
        energies, conditions = self.encoder.check(train.energies, train.conditions, "training sample")
        self.extra.update(self.encoder.fit(energies, conditions))
        self.extra["t_scale"] = np.array([math.log1p(float(train.showers.max()))])
        showers = np.asarray(train.showers, np.float64)
        total = showers.sum(axis=1)
        share = (showers[total > 0] / total[total > 0, None]).mean(axis=0)
        self.gen.init_from_data(share, float(np.mean(total / train.energies)))

    def _encode(self, energies: np.ndarray, conditions: dict[str, np.ndarray]) -> torch.Tensor:
        """(N, k) float32 condition code: standardised log E_inc and conditions + one-hot particle."""
        return torch.from_numpy(self.encoder.encode(energies, conditions))

    def _targets(self, conditions: dict[str, np.ndarray], names: tuple[str, ...], key: str,
                 fit: bool = False) -> torch.Tensor:
        if not names:
            return torch.zeros(len(next(iter(conditions.values()))), 0)
        values = np.stack([np.asarray(conditions[n], np.float64) for n in names], axis=1)
        if fit:
            self.extra[f"{key}_mean"] = values.mean(axis=0)
            self.extra[f"{key}_std"] = values.std(axis=0) + 1e-6
        return torch.from_numpy(((values - self.extra[f"{key}_mean"]) / self.extra[f"{key}_std"]).astype(np.float32))

    def _to_t(self, showers: np.ndarray) -> torch.Tensor:
        t = np.log1p(np.maximum(showers, 0.0)) / float(self.extra["t_scale"][0])
        return torch.from_numpy(t.astype(np.float32)).view(-1, 1, SIDE, SIDE)

    def _fake_t(self, fractions: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        """Generated (N, 1, 11, 11) fractions -> t space, readout threshold applied.

        Cells below the threshold read zero (their gradient is zero, like a ReLU)."""
        e = fractions * energies.view(-1, 1, 1, 1)
        e = e * (e >= float(self.dataset.geometry.threshold))
        return torch.log1p(e) / float(self.extra["t_scale"][0])

    def _shape(self, t_images: torch.Tensor, log_e: torch.Tensor) -> torch.Tensor:
        """shape_features of images in t space (differentiable)."""
        energies = torch.expm1(t_images * float(self.extra["t_scale"][0])).flatten(1)
        return shape_features(energies, log_e, self.gen.coords)

    def prepare(self, sample: ShowerSet) -> None:
        """Normalisation constants only (no training): enough to time a fresh model."""
        self._fit_normalisation(sample)
        self._targets(sample.conditions, self.regressed, "reg", fit=True)
        self._targets(sample.conditions, self.positions, "pos", fit=True)

    # ---- training ----------------------------------------------------------------------
    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        """Pre-train the regressor, then train G and D together; the generator of the epoch with the
        lowest monitoring chi2 is kept (``keep_best``)."""
        c = self.config
        epochs = int(c["epochs"] if epochs is None else epochs)
        if c.get("max_train") and len(train) > c["max_train"]:
            train = train.slice(0, int(c["max_train"]))
        self._fit_normalisation(train)
        images = self._to_t(train.showers)
        cond = self._encode(train.energies, train.conditions)
        log_e = torch.from_numpy(np.log(train.energies).astype(np.float32))
        reg_y = self._targets(train.conditions, self.regressed, "reg", fit=True)
        reg_pos = self._targets(train.conditions, self.positions, "pos", fit=True)
        monitor = valid if valid is not None and len(valid) else train.slice(0, min(len(train), 2000))
        monitor = monitor.slice(0, min(len(monitor), 5000))
        monitor_features = image_features(monitor.showers, monitor.energies)
        opt = {"gen": torch.optim.Adam(self.gen.parameters(), lr=c["lr"], betas=(0.5, 0.999)),
               "disc": torch.optim.Adam(self.disc.parameters(), lr=c["lr"], betas=(0.5, 0.999)),
               "reg": torch.optim.Adam(self.reg.parameters(), lr=1e-3)}
        batch = int(c["batch_size"])

        def pretrain() -> dict:
            losses = [self._regressor_epoch(shuffled_batches(len(train), batch, self.rng), images, reg_pos, reg_y,
                                            opt["reg"]) for _ in range(int(c["regressor_epochs"]))]
            return {"regressor_l1": losses}

        def epoch_batches(epoch: int) -> list[torch.Tensor]:
            self.reg.eval()
            for p in self.reg.parameters():
                p.requires_grad_(False)
            return shuffled_batches(len(train), batch, self.rng)

        def step(idx: torch.Tensor) -> dict[str, float]:
            return self._gan_step(idx, images, cond, log_e, reg_pos, reg_y, opt)

        def end_epoch(epoch: int) -> dict:
            generated = image_features(self.sample(monitor.energies, monitor.conditions).showers, monitor.energies)
            chi2 = feature_chi2(generated, monitor_features)
            return {"chi2": chi2, "chi2_sum": float(sum(chi2.values()))}

        trainer = Trainer(self, opt, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress,
                          monitor="chi2_sum", keep_best=["gen"] if c.get("keep_best", True) else [])
        threads = torch.get_num_threads()
        if c.get("train_threads"):
            torch.set_num_threads(int(c["train_threads"]))
        try:
            return trainer.run(epochs, epoch_batches, step, end_epoch=end_epoch, pretrain=pretrain)
        finally:
            torch.set_num_threads(threads)

    def _regressor_epoch(self, batches: list[torch.Tensor], images, pos, target, opt) -> float:
        """One pre-training epoch of the regressor (L1 on the standardised regressed conditions)."""
        dev = self.torch_device
        self.reg.train()
        losses = []
        scale = float(self.extra["t_scale"][0])
        for idx in batches:
            x = images[idx].to(dev)
            log_etot = torch.log(torch.expm1(x * scale).flatten(1).sum(1) + 1.0)
            loss = F.l1_loss(self.reg(x, pos[idx].to(dev), log_etot), target[idx].to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return float(np.mean(losses))

    def _gan_step(self, idx, images, cond, log_e, pos, target, opt) -> dict[str, float]:
        """One discriminator and one generator update on the batch ``idx`` (regressor frozen)."""
        c = self.config
        dev = self.torch_device
        scale = float(self.extra["t_scale"][0])
        x, y, le = images[idx].to(dev), cond[idx].to(dev), log_e[idx].to(dev)
        noise = torch.randn(len(idx), c["noise"], generator=self.rng).to(dev)
        fake = self._fake_t(self.gen(noise, y), torch.exp(le))
        # discriminator
        real_logit = self.disc(x, y, self._shape(x, le))
        fake_logit = self.disc(fake.detach(), y, self._shape(fake.detach(), le))
        d_loss = F.binary_cross_entropy_with_logits(real_logit, torch.full_like(real_logit, 0.9)) + \
            F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        opt["disc"].zero_grad()
        d_loss.backward()
        opt["disc"].step()
        # generator: adversarial + L1 of the regressed features (seed 001)
        fake_logit = self.disc(fake, y, self._shape(fake, le))
        log_etot = torch.log(torch.expm1(fake * scale).flatten(1).sum(1) + 1.0)
        l1 = F.l1_loss(self.reg(fake, pos[idx].to(dev), log_etot), target[idx].to(dev))
        g_loss = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit)) + c["reg_weight"] * l1
        opt["gen"].zero_grad()
        g_loss.backward()
        opt["gen"].step()
        return {"g_loss": g_loss.item(), "d_loss": d_loss.item(), "l1": l1.item()}

    # ---- generation ---------------------------------------------------------------------
    @torch.inference_mode()
    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        """One 11x11 shower (MeV, >= 0, readout threshold applied) per incident energy."""
        if "t_scale" not in self.extra:
            raise CalobenchError("model dcgan: not fitted (train it or load a saved model)")
        energies, conditions = self.encoder.check(energies, conditions, "sample")
        code = self._encode(energies, conditions)
        self.gen.eval()
        threshold = float(self.dataset.geometry.threshold)
        dev = self.torch_device
        # on the CPU the noise continues the model's own stream; on an accelerator it is drawn
        # there, from a generator seeded by that stream (no host-to-device copy per batch)
        gen = self.rng if dev.type == "cpu" else self.noise_generator(
            int(torch.randint(0, 2 ** 62, (1,), generator=self.rng)))
        # inputs go to the device once and the showers come back once (no copy per batch)
        code = code.to(dev)
        e_inc = torch.from_numpy(energies.astype(np.float32)).to(dev)
        result = torch.empty((len(energies), SIDE * SIDE), dtype=torch.float32, device=dev)
        for start in range(0, len(energies), batch_size):
            y = code[start:start + batch_size]
            noise = torch.randn(len(y), self.config["noise"], generator=gen, device=dev)
            e = self.gen(noise, y).flatten(1) * e_inc[start:start + len(y)][:, None]
            result[start:start + len(y)] = torch.where(e < threshold, torch.zeros_like(e), e)
        out = result.cpu().numpy()
        return ShowerSet(self.dataset.geometry, energies, out, conditions,
                         particle=",".join(self.dataset.particles),
                         provenance={"generator": self.name, "preset": self.preset, "seed": self.seed},
                         dataset=self.dataset.name)
