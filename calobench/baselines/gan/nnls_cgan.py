"""DarkSHINE NNLS + conditional GAN (seed 003) for the 20x20x11 LYSO ECAL (4400 cells).

The seed gives the ingredients, not the coupling: a CGAN conditioned on the energy, and a
non-negative least-squares problem argmin_X ||A X - b||^2, X >= 0, that "guides the generator
towards the unknown energy-deposit distribution". calobench couples them as follows (reasoning
and a measured comparison with the plain CGAN in docs/nnls-cgan.md):

1. Before training, NNLS fits a non-negative, energy-dependent mean deposit map
   T(E, particle) = sum_k B_k(log E_inc) X_k,particle: b is the (N, 4400) matrix of cell
   fractions E_cell / E_inc of the training showers, A the (N, K x P) design matrix of K
   piecewise-linear "hat" functions of log E_inc times a one-hot of the P particles. One
   scipy.optimize.nnls problem per cell (after a QR reduction of A, so each problem is only
   K x P wide). X >= 0 and B_k >= 0 make the template a physical (non-negative) deposit
   pattern at every energy, smooth across energies.
2. The generator is built on the NNLS map T(y): cell fractions are
   E_tot/E_inc x softmax_l(log T_l + d(z, y))_l x softmax_c in layer l(log T_c + mu_c + sigma_c n_c),
   with E_tot / E_inc = sum_c T_c(y) / E_inc x exp(h(z, y)). The dense heads d (11 layer
   log-weights: longitudinal fluctuations) and h (energy response), the convolutional mu and
   log sigma (lateral shape corrections and per-cell log-normal fluctuation widths) and the
   per-cell Gaussian noise n are what the GAN learns: multiplicative fluctuations around the
   NNLS map, so no layer and no halo cell where T > 0 is structurally empty.
3. The readout threshold of the geometry is applied to the generated showers in training as at
   sampling (cells below it read 0, the surviving cells are rescaled to keep E_tot), so the
   discriminator compares like with like and sparsity can be learned.
4. During training the generator loss is the CGAN loss plus ``nnls_weight`` x
   (||mean_batch(G(z|y)/E_inc - T(y)/E_inc)||^2 / ||mean_batch(T(y)/E_inc)||^2
    + ``nnls_ratio_weight`` x (mean_batch(E_tot/E_inc) / mean_batch(sum T/E_inc) - 1)^2
    + ``nnls_layer_weight`` x mean_l (mean_batch(E_l/E_inc) / mean_batch(T_l/E_inc) - 1)^2):
   each batch of generated showers must reproduce, on average, the NNLS deposit map, its total
   and its per-layer energies, while the discriminator shapes the shower-to-shower fluctuations.
``nnls_weight = 0`` gives the plain CGAN (same networks, same seeds, log T = 0: a uniform start,
base ratio 1, no guide term) for comparison.

Networks: layers are the 11 channels of a 20x20 image. Generator (z + y) -> Dense(width x 5x5)
-> up x2 -> Conv -> up x2 -> Conv -> [+ log T channels] -> Conv -> Conv (mu, log sigma per layer);
dense heads on (z + y) give d and h. z holds latent_dim numbers plus one Gaussian per cell.
Generated energies are >= 0 by construction. Discriminator: strided convolutions on
u = log1p(E/(eps E_inc))/log1p(1/eps), then the conditions, log(E_tot / E_inc), the per-layer
energy fractions (linear and log), mean u, centres of energy and widths concatenated before two
dense layers; binary cross-entropy with one-sided label smoothing and half the generator's
learning rate (a weaker discriminator trains more stably on 2100 showers).
Conditions: log E_inc (the ECAL energy scale) and the particle (PDG 11 or 22, one-hot).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import nnls
from torch import nn

from calobench.errors import CalobenchError
from calobench.data.showerset import ShowerSet
from calobench.baselines.gan.conditional_gan import ConditionalGAN
from calobench.models.common.transforms import LogRatioTransform

#: Floor of the NNLS map (fraction of E_inc) before its logarithm: cells the fit leaves at 0 stay
#: (practically) empty, 1e-9 x 8 GeV being far below the 0.5 MeV readout threshold.
TEMPLATE_FLOOR = 1e-9
#: Initial log of the per-cell fluctuation width (log-normal sigma exp(-1) = 0.37).
INITIAL_LOG_SIGMA = -1.0
#: Initial scale of the longitudinal head's last layer (shower-depth fluctuations start non-zero).
LONGITUDINAL_GAIN = 1.0


class CGANGenerator(nn.Module):
    """(z, cond, log template, base ratio) -> cell fractions E_cell / E_inc, (B, layers, 20, 20).

    z = [latent (B, latent), per-cell noise (B, layers x 400)]. The shower is built on the NNLS map
    T(y) (``log_template``: log of T / E_inc per cell, floored), as three multiplicative parts:

    - longitudinal: layer fractions softmax_l(log T_l + d_l(z, y)), d from a dense head;
    - lateral: within each layer softmax_c(log T_c + mu_c(z, y) + sigma_c(z, y) n_c), mu and
      log sigma from the convolutions, n the per-cell noise (shower-to-shower cell fluctuations);
    - total: E_tot / E_inc = base ratio x exp(h(z, y)), h from a dense head.

    Every cell where T > 0 can receive energy (no structurally empty deep layers or halo), all
    fractions are >= 0, and with the heads' last layers initialised small the untrained
    generator returns the NNLS map itself. The readout threshold is applied by the caller.
    """

    def __init__(self, latent: int, cond_dim: int, layers: int, width: int) -> None:
        super().__init__()
        self.width, self.latent, self.layers = width, latent, layers
        zc = latent + cond_dim
        self.dense = nn.Linear(zc, width * 5 * 5)
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width // 2, 3, padding=1), nn.LeakyReLU(0.2))
        # the log template enters again at full resolution (where the shower is, per layer)
        self.out = nn.Sequential(nn.Conv2d(width // 2 + layers, width // 2, 3, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(width // 2, 2 * layers, 3, padding=1))
        self.longitudinal = nn.Sequential(nn.Linear(zc, width), nn.LeakyReLU(0.2), nn.Linear(width, layers))
        self.ratio = nn.Sequential(nn.Linear(zc, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))
        with torch.no_grad():  # start at the template with narrow fluctuations
            for head, gain in ((self.out[-1], 0.01), (self.longitudinal[-1], LONGITUDINAL_GAIN), (self.ratio[-1], 0.01)):
                head.weight.mul_(gain)
                head.bias.zero_()
            self.out[-1].bias[layers:] = INITIAL_LOG_SIGMA

    def forward(self, z: torch.Tensor, cond: torch.Tensor, log_template: torch.Tensor,
                base_ratio: torch.Tensor) -> torch.Tensor:
        """log_template: (B, layers, 20, 20); base_ratio: (B, 1). Returns fractions of E_inc."""
        b = z.shape[0]
        zc = torch.cat([z[:, :self.latent], cond], 1)
        noise = z[:, self.latent:].view(b, self.layers, 20, 20)
        h = self.up(F.leaky_relu(self.dense(zc), 0.2).view(-1, self.width, 5, 5))
        mu, log_sigma = self.out(torch.cat([h, (log_template + 10.0) / 10.0], 1)).chunk(2, 1)
        logits = (log_template + mu + torch.exp(log_sigma.clamp(-6.0, 3.0)) * noise).flatten(2)
        lateral = torch.softmax(logits, 2)  # (B, layers, 400), unit sum per layer
        layer_log = torch.logsumexp(log_template.flatten(2), 2)  # log T_l
        longitudinal = torch.softmax(layer_log + self.longitudinal(zc), 1)  # (B, layers)
        ratio = base_ratio * torch.exp(self.ratio(zc))
        return (lateral * (longitudinal * ratio)[:, :, None]).view(b, self.layers, 20, 20)


class CGANDiscriminator(nn.Module):
    """(u (B, layers, 20, 20), cond) -> logit (B,).

    Strided convolutions on u, then the conditions, log(E_tot / E_inc), the per-layer energy
    fractions (linear and log), the per-layer mean u (a differentiable occupancy measure) and the per-layer centres
    of energy and widths in x and y (in cell pitches) before two dense layers.
    """

    def __init__(self, cond_dim: int, layers: int, width: int, transform: LogRatioTransform) -> None:
        super().__init__()
        self.eps, self.scale = transform.eps, transform.scale
        self.convs = nn.Sequential(
            nn.Conv2d(layers, width // 2, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width // 2, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),   # 10x10
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),        # 5x5
            nn.Flatten())
        self.head = nn.Sequential(nn.Linear(width * 25 + cond_dim + 1 + 7 * layers, 128), nn.LeakyReLU(0.2),
                                  nn.Linear(128, 1))

    def forward(self, u: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        e = torch.expm1(u * self.scale) * self.eps  # (B, layers, 20, 20) E_cell / E_inc
        per_layer = e.flatten(2).sum(2)  # (B, layers)
        etot = per_layer.sum(1, keepdim=True)
        pos = torch.arange(20, dtype=u.dtype, device=u.device) - 9.5  # cell centres in pitches
        den = per_layer + 1e-9
        moments = []
        for profile in (e.sum(2), e.sum(3)):  # (B, layers, 20) along x, along y
            mean = (profile * pos).sum(2) / den
            var = (profile * pos ** 2).sum(2) / den - mean ** 2
            moments += [mean, torch.sqrt(var.clamp_min(0) + 1e-6)]
        features = [self.convs(u), cond, torch.log(etot + 1e-6),
                    torch.log(per_layer / (etot + 1e-6) + 1e-6) / 3.0, 3.0 * per_layer / (etot + 1e-6),
                    10.0 * u.flatten(2).mean(2), *moments]
        return self.head(torch.cat(features, 1)).squeeze(1)


def hat_basis(log_e: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """(N, K) piecewise-linear interpolation weights of log E on the knots (rows sum to 1)."""
    x = np.clip(log_e, knots[0], knots[-1])
    if len(knots) == 1 or knots[-1] <= knots[0]:  # one knot, or not fitted yet (all equal)
        out = np.zeros((len(x), len(knots)))
        out[:, 0] = 1.0
        return out
    step = knots[1] - knots[0]
    return np.clip(1.0 - np.abs(x[:, None] - knots[None, :]) / step, 0.0, None)


def fit_nnls_template(fractions: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Solve argmin_X ||design X - fractions||^2 with X >= 0, one NNLS per cell.

    fractions: (N, cells) cell energy / E_inc; design: (N, M) non-negative basis values.
    Returns X, (M, cells) >= 0. Columns of ``design`` that are all zero get X = 0.
    The QR reduction design = Q R leaves ||R x - Q^T b|| with the same minimiser, so each
    problem is M x M instead of N x M.
    """
    used = np.flatnonzero(np.abs(design).sum(0) > 0)
    q, r = np.linalg.qr(design[:, used])
    qtb = q.T @ fractions.astype(np.float64)  # (M_used, cells)
    out = np.zeros((design.shape[1], fractions.shape[1]))
    for c in range(fractions.shape[1]):
        out[used, c], _ = nnls(r, qtb[:, c], maxiter=50 * len(used))
    return out


class NNLSCGAN(ConditionalGAN):
    """DarkSHINE conditional GAN guided by an NNLS fit of the mean energy-deposit map."""

    name = "nnls-cgan"
    seed_document = "003"
    datasets = ("darkshine",)
    description = "DarkSHINE CGAN with a non-negative least-squares deposit-map guide"
    presets = {
        "tiny": {"latent_dim": 16, "width": 16, "epochs": 2, "batch_size": 64, "lr": 1e-3, "eps": 1e-5,
                 "nnls_weight": 1.0, "nnls_ratio_weight": 1000.0, "nnls_layer_weight": 10.0, "d_lr_factor": 0.5, "label_smoothing": 0.1, "nnls_knots": 4, "max_train_events": 400},
        "quick": {"latent_dim": 64, "width": 32, "epochs": 40, "min_steps": 25, "batch_size": 64, "lr": 2e-4, "eps": 1e-5,
                  "nnls_weight": 1.0, "nnls_ratio_weight": 1000.0, "nnls_layer_weight": 10.0, "d_lr_factor": 0.5, "label_smoothing": 0.1, "nnls_knots": 8, "max_train_events": 20000},
        "full": {"latent_dim": 128, "width": 128, "epochs": 200, "min_steps": 50, "batch_size": 256, "lr": 1e-4, "eps": 1e-5,
                 "nnls_weight": 1.0, "nnls_ratio_weight": 1000.0, "nnls_layer_weight": 10.0, "d_lr_factor": 0.5, "label_smoothing": 0.1, "nnls_knots": 12, "max_train_events": None},
    }

    def build(self) -> None:
        shape = self.dataset.geometry.shape  # (layers, 20, 20)
        if tuple(shape[1:]) != (20, 20):
            raise CalobenchError(f"nnls-cgan needs a 20x20 grid, dataset {self.dataset.name} has {shape}")
        self.layers = int(shape[0])
        width = int(self.config["width"])
        self.transform = LogRatioTransform(self.config["eps"])
        self.generator = CGANGenerator(int(self.config["latent_dim"]), self.cond_dim, self.layers, width)
        self.discriminator = CGANDiscriminator(self.cond_dim, self.layers, width, self.transform)
        k = int(self.config["nnls_knots"])
        p = max(len(self.pdg_codes), 1)
        self.extra["nnls_knots"] = np.zeros(k, np.float32)
        self.extra["nnls_coef"] = np.zeros((k * p, self.dataset.geometry.n_cells), np.float32)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def base_ratio(self, raw: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 1) E_tot / E_inc of the NNLS map at the batch's conditions (1 without the guide)."""
        e = raw["E_inc"]
        if float(self.config["nnls_weight"]) <= 0:
            return torch.ones(len(e), 1, device=e.device)
        return self.design_tensor(raw).to(e.device) @ self._coef.sum(1, keepdim=True)

    def design_tensor(self, raw: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, K x P) float32 NNLS design matrix of a batch's raw conditions (precomputed on the
        host for a whole sample call, key ``design``, so that sampling makes no host round trip)."""
        if "design" in raw:
            return raw["design"]
        a = self.design(np.log(raw["E_inc"].cpu().numpy().astype(np.float64)),
                        raw["particle"].cpu().numpy() if "particle" in raw else None)
        return torch.from_numpy(a.astype(np.float32))

    def sampling_inputs(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**raw, "design": self.design_tensor(raw)}

    def after_move(self) -> None:
        self._coef_cache = (None, None)  # rebuilt on the new device when next used

    @property
    def _coef(self) -> torch.Tensor:
        coef = self.extra["nnls_coef"]
        if getattr(self, "_coef_cache", (None,))[0] is not coef:
            self._coef_cache = (coef, torch.from_numpy(np.asarray(coef, np.float32)).to(self.torch_device))
        return self._coef_cache[1]

    @property
    def latent_dim(self) -> int:
        """Noise per shower: the dense latent plus one Gaussian per cell (lateral fluctuations)."""
        return int(self.config["latent_dim"]) + self.dataset.geometry.n_cells

    def log_template(self, design: torch.Tensor) -> torch.Tensor:
        """(B, layers, 20, 20) log of the NNLS map T / E_inc (floored at 1e-9) for a design matrix;
        zeros (a uniform start) without the guide."""
        if float(self.config["nnls_weight"]) <= 0:
            return torch.zeros(len(design), self.layers, 20, 20, device=design.device)
        return torch.log((design @ self._coef).clamp_min(0) + TEMPLATE_FLOOR).view(-1, self.layers, 20, 20)

    def fractions(self, z: torch.Tensor, cond: torch.Tensor, raw: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, cells) generated E_cell / E_inc before the readout threshold."""
        design = self.design_tensor(raw).to(z.device)
        return self.generator(z, cond, self.log_template(design), self.base_ratio(raw)).flatten(1)

    def readout(self, fraction: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        """(B, cells) MeV: cells below the readout threshold read 0 and the surviving cells are
        rescaled so that E_tot keeps the generated E_tot / E_inc (the ratio head's value)."""
        total = fraction.sum(1, keepdim=True) * energies[:, None]
        e = fraction * energies[:, None]
        kept = torch.where(e >= float(self.dataset.geometry.threshold), e, torch.zeros((), device=e.device))
        return kept * (total / kept.sum(1, keepdim=True).clamp_min(1e-12))

    def generate(self, z, cond, energies, raw):
        return self.readout(self.fractions(z, cond, raw), energies)

    # ---- NNLS -----------------------------------------------------------------------
    def design(self, log_e: np.ndarray, particle: np.ndarray | None) -> np.ndarray:
        """(N, K x P) design matrix: hat functions of log E_inc times the particle one-hot."""
        basis = hat_basis(log_e, self.extra["nnls_knots"].astype(np.float64))
        if not self.pdg_codes:
            return basis
        onehot = np.stack([(np.rint(particle) == c) for c in self.pdg_codes], 1).astype(np.float64)
        return (onehot[:, :, None] * basis[:, None, :]).reshape(len(log_e), -1)

    def template(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """NNLS mean deposit map in MeV, (N, cells), >= 0, for the given conditions."""
        raw = self.raw_conditions(energies, conditions, "template")
        a = self.design(np.log(raw["E_inc"]), raw.get("particle"))
        return (a @ self.extra["nnls_coef"].astype(np.float64)) * raw["E_inc"][:, None]

    def prepare_fit(self, train: ShowerSet) -> None:
        raw = self.raw_conditions(train.energies, train.conditions, "training sample")
        log_e = np.log(raw["E_inc"])
        self.extra["nnls_knots"] = np.linspace(log_e.min(), log_e.max(), int(self.config["nnls_knots"])).astype(np.float32)
        fractions = np.asarray(train.showers, np.float32) / raw["E_inc"][:, None].astype(np.float32)
        a = self.design(log_e, raw.get("particle"))
        self.extra["nnls_coef"] = fit_nnls_template(fractions, a).astype(np.float32)

    def nnls_loss(self, fake_fraction: torch.Tensor, design: torch.Tensor) -> torch.Tensor:
        """Relative squared distance between the batch-mean generated and NNLS deposit maps."""
        target = (design @ self._coef).mean(0)
        return ((fake_fraction.mean(0) - target) ** 2).sum() / (target ** 2).sum().clamp_min(1e-12)

    def nnls_layer_loss(self, fake_fraction: torch.Tensor, design: torch.Tensor) -> torch.Tensor:
        """Mean over layers of (batch-mean generated layer energy / NNLS layer energy - 1)^2: every
        layer counts equally, so the deep layers' small energies are held to the map as well."""
        target = (design @ self._coef).view(len(design), self.layers, -1).sum(2).mean(0)
        fake = fake_fraction.view(len(design), self.layers, -1).sum(2).mean(0)
        used = target > 0
        return ((fake[used] / target[used] - 1.0) ** 2).mean()

    # ---- training -------------------------------------------------------------------
    def make_optimizers(self):
        lr = float(self.config["lr"])
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999))
        lr_d = lr * float(self.config.get("d_lr_factor", 1.0))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr_d, betas=(0.5, 0.999))
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def train_step(self, x, cond, energies, raw, rng):
        shape = (-1, self.layers, 20, 20)
        real = self.transform.forward(x, energies).view(shape)
        b = real.shape[0]
        z = torch.randn(b, self.latent_dim, generator=rng, device=x.device)
        design = self.design_tensor(raw).to(x.device)
        fraction = self.fractions(z, cond, raw)
        # the readout threshold, as at sampling (real showers have it): cells below read 0
        fake = self.transform.forward(self.readout(fraction, energies), energies).view(shape)
        ones, zeros = torch.ones(b, device=x.device), torch.zeros(b, device=x.device)
        smooth = float(self.config.get("label_smoothing", 0.0))
        loss_d = (F.binary_cross_entropy_with_logits(self.discriminator(real, cond), ones * (1.0 - smooth))
                  + F.binary_cross_entropy_with_logits(self.discriminator(fake.detach(), cond), zeros))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        adv = F.binary_cross_entropy_with_logits(self.discriminator(fake, cond), ones)
        out = {"discriminator": loss_d.item(), "generator": adv.item()}
        loss_g = adv
        weight = float(self.config["nnls_weight"])
        # the NNLS distance is monitored even when it is switched off (nnls_weight = 0)
        nnls_term = self.nnls_loss(fraction, design)
        # batch-mean E_tot / E_inc against the NNLS map's sum (the shape term barely sees it)
        t_ratio = (design @ self._coef).sum(1)
        ratio_term = (fraction.sum(1).mean() / t_ratio.mean().clamp_min(1e-12) - 1.0) ** 2
        layer_term = self.nnls_layer_loss(fraction, design)
        out["nnls"], out["nnls_ratio"], out["nnls_layers"] = nnls_term.item(), ratio_term.item(), layer_term.item()
        if weight > 0:
            loss_g = adv + weight * (nnls_term + float(self.config.get("nnls_ratio_weight", 0.0)) * ratio_term
                                     + float(self.config.get("nnls_layer_weight", 0.0)) * layer_term)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return out
