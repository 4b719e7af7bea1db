"""Conditional Wasserstein GAN with gradient penalty (WGAN-GP), for every voxel dataset.

The comparison model of seeds 003 and 004 (Gulrajani et al. 2017, arXiv:1704.00028;
Arjovsky et al. 2017, arXiv:1701.07875). Fully connected generator and critic on the
flattened cell vector, so one design serves crystal grids and CaloChallenge cylinders alike.

Showers live in the network as u = log1p(E / (eps E_inc)) / log1p(1 / eps) (see
``LogRatioTransform``). The generator has a shape head (ReLU, so exact zeros give realistic
sparsity, normalised to unit sum) and a softplus head for E_tot / E_inc; cells are shape x
ratio x E_inc >= 0 MeV by construction. Conditions: standardised
log E_inc, the dataset's standardised conditions and a one-hot particle code. The critic also
sees log(E_tot / E_inc) computed from its input, which sharpens the energy response.
"""

from __future__ import annotations

import torch
from torch import nn

from calobench.baselines.gan.conditional_gan import ConditionalGAN
from calobench.datasets import Dataset
from calobench.models.common.transforms import LogRatioTransform


def mlp(sizes: list[int], act: type[nn.Module], **kw) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), act(**kw)]
    return layers


class Generator(nn.Module):
    """(z, cond) -> u (B, cells) in [0, 1].

    Two heads: a shower shape (ReLU, normalised to unit sum) and the total energy ratio
    E_tot / E_inc (softplus); the cells are shape x ratio, so the energy response is learned
    by one output instead of emerging from thousands of log-space cells.
    """

    def __init__(self, latent: int, cond_dim: int, hidden: list[int], cells: int,
                 transform: LogRatioTransform) -> None:
        super().__init__()
        self.eps, self.scale = transform.eps, transform.scale
        self.body = nn.Sequential(*mlp([latent + cond_dim, *hidden], nn.LeakyReLU, negative_slope=0.2),
                                  nn.Linear(hidden[-1], cells + 1))

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.body(torch.cat([z, cond], 1))
        shape = torch.expm1(torch.relu(out[:, :-1]).clamp_max(1.0) * self.scale)
        fraction = shape / shape.sum(1, keepdim=True).clamp_min(1e-12)
        ratio = nn.functional.softplus(out[:, -1:])
        return (torch.log1p(fraction * ratio / self.eps) / self.scale).clamp_max(1.0)


class Critic(nn.Module):
    """(u, cond) -> score (B,). No normalisation layers (the gradient penalty is per sample)."""

    def __init__(self, cells: int, cond_dim: int, hidden: list[int], transform: LogRatioTransform) -> None:
        super().__init__()
        self.eps, self.scale = transform.eps, transform.scale
        self.body = nn.Sequential(*mlp([cells + cond_dim + 1, *hidden], nn.LeakyReLU, negative_slope=0.2),
                                  nn.Linear(hidden[-1], 1))

    def forward(self, u: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        etot_ratio = torch.expm1(u * self.scale).sum(1, keepdim=True) * self.eps
        feat = torch.log(etot_ratio + 1e-6)
        return self.body(torch.cat([u, cond, feat], 1)).squeeze(1)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor,
                     rng: torch.Generator) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, arXiv:1704.00028): E[(||grad D(x_hat)|| - 1)^2]
    at random interpolates x_hat between real and generated samples."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=rng, device=real.device)
    xhat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(xhat, cond)
    grad, = torch.autograd.grad(score.sum(), xhat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


class WGANGP(ConditionalGAN):
    """Conditional WGAN-GP on the flattened cell vector (any voxel geometry)."""

    name = "wgan-gp"
    seed_document = ""
    description = "conditional Wasserstein GAN with gradient penalty, MLP generator and critic"
    presets = {
        "tiny": {"latent_dim": 16, "g_hidden": [64, 64], "c_hidden": [64, 64], "epochs": 8, "batch_size": 32,
                 "n_critic": 2, "gp_weight": 10.0, "lr": 1e-3, "eps": 1e-5, "max_train_events": 512},
        "quick": {"latent_dim": 64, "g_hidden": [256, 512], "c_hidden": [512, 256], "epochs": 100,
                  "min_steps": 25, "batch_size": 64, "n_critic": 5, "gp_weight": 10.0, "lr": 2e-4, "eps": 1e-5,
                  "max_train_events": 20000},
        "full": {"latent_dim": 128, "g_hidden": [512, 1024, 2048], "c_hidden": [2048, 1024, 512],
                 "epochs": 300, "min_steps": 50, "batch_size": 256, "n_critic": 5, "gp_weight": 10.0, "lr": 1e-4, "eps": 1e-5,
                 "max_train_events": None},
    }

    @classmethod
    def supports(cls, dataset: Dataset) -> bool:
        """Every voxel dataset (a fixed cell vector)."""
        return dataset.geometry.is_voxel

    def build(self) -> None:
        cells = self.dataset.geometry.n_cells
        self.transform = LogRatioTransform(self.config["eps"])
        self.generator = Generator(self.latent_dim, self.cond_dim, list(self.config["g_hidden"]), cells,
                                   self.transform)
        self.critic = Critic(cells, self.cond_dim, list(self.config["c_hidden"]), self.transform)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "critic": self.critic}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = float(self.config["lr"])
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.9))
        self.opt_c = torch.optim.Adam(self.critic.parameters(), lr=lr, betas=(0.5, 0.9))
        return {"generator": self.opt_g, "critic": self.opt_c}

    def generate(self, z, cond, energies, raw):
        return self.transform.inverse(self.generator(z, cond), energies)

    def train_step(self, x, cond, energies, raw, rng):
        real = self.transform.forward(x, energies)
        b = real.shape[0]
        z = torch.randn(b, self.latent_dim, generator=rng, device=real.device)
        with torch.no_grad():
            fake = self.generator(z, cond)
        c_real, c_fake = self.critic(real, cond), self.critic(fake, cond)
        gp = gradient_penalty(self.critic, real, fake, cond, rng)
        loss_c = c_fake.mean() - c_real.mean() + float(self.config["gp_weight"]) * gp
        self.opt_c.zero_grad(set_to_none=True)
        loss_c.backward()
        self.opt_c.step()
        out = {"critic": loss_c.item(), "w_dist": (c_real.mean() - c_fake.mean()).item()}
        # one generator step every n_critic critic steps (counted within the epoch's batches)
        if (self.batch_index + 1) % int(self.config["n_critic"]) == 0:
            z = torch.randn(b, self.latent_dim, generator=rng, device=real.device)
            loss_g = -self.critic(self.generator(z, cond), cond).mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            out["generator"] = loss_g.item()
        return out
