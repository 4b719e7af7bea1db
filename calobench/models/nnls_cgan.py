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
2. The generator output is factorised (as in wgan-gp): a shower shape normalised to unit sum
   times E_tot / E_inc = sum_c T_c(y) / E_inc x exp(h(z, y)), i.e. the NNLS map's total
   fraction at the conditions times a learned, initially narrow correction.
3. During training the generator loss is the CGAN loss plus ``nnls_weight`` x
   (||mean_batch(G(z|y)/E_inc - T(y)/E_inc)||^2 / ||mean_batch(T(y)/E_inc)||^2
    + ``nnls_ratio_weight`` x (mean_batch(E_tot/E_inc) / mean_batch(sum T/E_inc) - 1)^2):
   each batch of generated showers must reproduce, on average, the NNLS deposit map and its
   total for its conditions, while the discriminator shapes the shower-to-shower fluctuations.
``nnls_weight = 0`` gives the plain CGAN (same networks, same seeds, base ratio 1) for comparison.

Networks: layers are the 11 channels of a 20x20 image. Generator (z + y) -> Dense(64x5x5)
-> up x2 -> Conv 64 -> up x2 -> Conv 32 -> Conv 11 -> ReLU in u = log1p(E/(eps E_inc))/log1p(1/eps)
space, normalised to unit sum; a dense head on (z + y) gives h. Generated energies are >= 0.
Discriminator: strided convolutions on u, then the
conditions and log(E_tot / E_inc) concatenated before two dense layers; binary cross-entropy.
Conditions: log E_inc (the ECAL energy scale) and the particle (PDG 11 or 22, one-hot).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import nnls
from torch import nn

from ..errors import CalobenchError
from ..showerset import ShowerSet
from .gan_layers import ConditionalGAN, LogRatioTransform


class CGANGenerator(nn.Module):
    """(z, cond) -> u, (B, layers, 20, 20) in [0, 1].

    Two outputs, as in wgan-gp: a shower shape from the convolutions (ReLU in u space, so exact
    zeros give realistic sparsity, normalised to unit sum over the 4400 cells) and the ratio
    E_tot / E_inc from a small dense head (softplus). Cells are shape x ratio x E_inc >= 0, so
    the energy response is one learned number instead of the sum of 4400 log-space cells.
    """

    def __init__(self, latent: int, cond_dim: int, layers: int, width: int,
                 transform: LogRatioTransform) -> None:
        super().__init__()
        self.width = width
        self.eps, self.scale = transform.eps, transform.scale
        self.dense = nn.Linear(latent + cond_dim, width * 5 * 5)
        self.convs = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width // 2, 3, padding=1),
            nn.LeakyReLU(0.2), nn.Conv2d(width // 2, layers, 3, padding=1))
        self.ratio = nn.Sequential(nn.Linear(latent + cond_dim, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))
        # start at the base ratio with a narrow spread (the discriminator widens it if needed)
        with torch.no_grad():
            self.ratio[-1].weight.mul_(0.01)
            self.ratio[-1].bias.zero_()

    def forward(self, z: torch.Tensor, cond: torch.Tensor, base_ratio: torch.Tensor) -> torch.Tensor:
        """base_ratio: (B, 1) E_tot / E_inc the head is relative to (the NNLS map's sum)."""
        zc = torch.cat([z, cond], 1)
        h = F.leaky_relu(self.dense(zc), 0.2).view(-1, self.width, 5, 5)
        u_shape = torch.relu(self.convs(h)).clamp_max(1.0)
        shape = torch.expm1(u_shape * self.scale)
        fraction = shape / shape.flatten(1).sum(1)[:, None, None, None].clamp_min(1e-12)
        ratio = (base_ratio * torch.exp(self.ratio(zc)))[:, :, None, None]
        return (torch.log1p(fraction * ratio / self.eps) / self.scale).clamp_max(1.0)


class CGANDiscriminator(nn.Module):
    """(u (B, layers, 20, 20), cond) -> logit (B,)."""

    def __init__(self, cond_dim: int, layers: int, width: int, transform: LogRatioTransform) -> None:
        super().__init__()
        self.eps, self.scale = transform.eps, transform.scale
        self.convs = nn.Sequential(
            nn.Conv2d(layers, width // 2, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width // 2, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),   # 10x10
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),        # 5x5
            nn.Flatten())
        self.head = nn.Sequential(nn.Linear(width * 25 + cond_dim + 1, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))

    def forward(self, u: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        etot = torch.expm1(u * self.scale).flatten(1).sum(1, keepdim=True) * self.eps
        return self.head(torch.cat([self.convs(u), cond, torch.log(etot + 1e-6)], 1)).squeeze(1)


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
                 "nnls_weight": 1.0, "nnls_ratio_weight": 1000.0, "nnls_knots": 4, "max_train_events": 400},
        "quick": {"latent_dim": 64, "width": 32, "epochs": 40, "min_steps": 25, "batch_size": 64, "lr": 2e-4, "eps": 1e-5,
                  "nnls_weight": 1.0, "nnls_ratio_weight": 1000.0, "nnls_knots": 8, "max_train_events": 20000},
        "full": {"latent_dim": 128, "width": 128, "epochs": 200, "min_steps": 50, "batch_size": 256, "lr": 1e-4, "eps": 1e-5,
                 "nnls_weight": 1.0, "nnls_ratio_weight": 1000.0, "nnls_knots": 12, "max_train_events": None},
    }

    def build(self) -> None:
        shape = self.dataset.geometry.shape  # (layers, 20, 20)
        if tuple(shape[1:]) != (20, 20):
            raise CalobenchError(f"nnls-cgan needs a 20x20 grid, dataset {self.dataset.name} has {shape}")
        self.layers = int(shape[0])
        width = int(self.config["width"])
        self.transform = LogRatioTransform(self.config["eps"])
        self.generator = CGANGenerator(self.latent_dim, self.cond_dim, self.layers, width, self.transform)
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
        """(B, K x P) float32 NNLS design matrix of a batch's raw conditions."""
        a = self.design(np.log(raw["E_inc"].cpu().numpy().astype(np.float64)),
                        raw["particle"].cpu().numpy() if "particle" in raw else None)
        return torch.from_numpy(a.astype(np.float32))

    @property
    def _coef(self) -> torch.Tensor:
        coef = self.extra["nnls_coef"]
        if getattr(self, "_coef_cache", (None,))[0] is not coef:
            self._coef_cache = (coef, torch.from_numpy(np.asarray(coef, np.float32)).to(self.torch_device))
        return self._coef_cache[1]

    def generate(self, z, cond, energies, raw):
        u = self.generator(z, cond, self.base_ratio(raw)).flatten(1)
        return self.transform.inverse(u, energies)

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
        raw = self._raw_conditions(energies, conditions)
        a = self.design(np.log(raw["E_inc"]), raw.get("particle"))
        return (a @ self.extra["nnls_coef"].astype(np.float64)) * raw["E_inc"][:, None]

    def prepare_fit(self, train: ShowerSet, epoch_start: int) -> None:
        raw = self._raw_conditions(train.energies, train.conditions)
        log_e = np.log(raw["E_inc"])
        self.extra["nnls_knots"] = np.linspace(log_e.min(), log_e.max(), int(self.config["nnls_knots"])).astype(np.float32)
        fractions = np.asarray(train.showers, np.float32) / raw["E_inc"][:, None].astype(np.float32)
        a = self.design(log_e, raw.get("particle"))
        self.extra["nnls_coef"] = fit_nnls_template(fractions, a).astype(np.float32)

    def nnls_loss(self, fake_fraction: torch.Tensor, design: torch.Tensor) -> torch.Tensor:
        """Relative squared distance between the batch-mean generated and NNLS deposit maps."""
        target = (design @ self._coef).mean(0)
        return ((fake_fraction.mean(0) - target) ** 2).sum() / (target ** 2).sum().clamp_min(1e-12)

    # ---- training -------------------------------------------------------------------
    def make_optimizers(self):
        lr = float(self.config["lr"])
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def train_step(self, x, cond, energies, raw, rng):
        shape = (-1, self.layers, 20, 20)
        real = self.transform.forward(x, energies).view(shape)
        b = real.shape[0]
        z = torch.randn(b, self.latent_dim, generator=rng, device=x.device)
        design = self.design_tensor(raw).to(x.device)
        base = self.base_ratio(raw)
        fake = self.generator(z, cond, base)
        ones, zeros = torch.ones(b, device=x.device), torch.zeros(b, device=x.device)
        loss_d = (F.binary_cross_entropy_with_logits(self.discriminator(real, cond), ones)
                  + F.binary_cross_entropy_with_logits(self.discriminator(fake.detach(), cond), zeros))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        adv = F.binary_cross_entropy_with_logits(self.discriminator(fake, cond), ones)
        out = {"discriminator": loss_d.item(), "generator": adv.item()}
        loss_g = adv
        weight = float(self.config["nnls_weight"])
        # the NNLS distance is monitored even when it is switched off (nnls_weight = 0)
        fraction = self.transform.inverse(fake.flatten(1), torch.ones_like(energies))
        nnls_term = self.nnls_loss(fraction, design)
        # batch-mean E_tot / E_inc against the NNLS map's sum (the shape term barely sees it)
        t_ratio = (design @ self._coef).sum(1)
        ratio_term = (fraction.sum(1).mean() / t_ratio.mean().clamp_min(1e-12) - 1.0) ** 2
        out["nnls"], out["nnls_ratio"] = nnls_term.item(), ratio_term.item()
        if weight > 0:
            loss_g = adv + weight * (nnls_term + float(self.config.get("nnls_ratio_weight", 0.0)) * ratio_term)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return out
