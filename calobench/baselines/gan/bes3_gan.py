"""BESIII EMC GAN (seed 004): 11x11 hit maps of e+, e-, gamma conditioned on the MC truth.

Following the seed (an LHCb-style GAN):
- generator (~46k parameters): (noise + conditions) -> Dense(16x4x4, + 1 ratio unit) -> reshape
  (16, 4, 4) -> UpSample x3 -> Conv2D(16, 4x4) -> Conv2D(16, 3x3) x2 -> Conv2D(8, 3x3) ->
  Conv2D(1, 3x3) + per-cell bias; the 11x11 output is the hit map divided by the momentum |p|:
  sigmoid(ratio unit) (= E_tot / |p| < 1) x a unit-sum shape expm1(S softplus(.)) (a log-space
  head), so the shower, map x |p|, is >= 0 MeV by construction. Cells under the readout
  threshold read zero at sampling and, with a straight-through gradient, in the fakes the
  discriminator sees during training (``threshold_fakes``). The ratio unit and the per-cell
  bias start at the training set's mean ratio and mean shape (``prepare_fit``).
  Deviation from the seed's ReLUs: LeakyReLU(0.2) inside, because with ReLUs the output units
  died within a few epochs on the embedded sample (all-zero maps).
- discriminator: the map normalised by |p| and a log view log1p(E / threshold) (second channel)
  -> Conv2D(32, 2x2) -> Conv2D(16, 3x3) x3, each with LeakyReLU and Dropout(0.1) -> AvgPool(2x2)
  -> flatten -> minibatch discrimination; then concatenate(features, minibatch, conditions,
  energy sum, energy-minus-momentum, sparsity) -> Dense(20) + LeakyReLU -> Dense(1).
- regressor: a small CNN trained first on the real showers to reconstruct the observables
  (log E_inc, px, py, pz, E, standardised) from a hit map; frozen, it constrains the generator
  with an MSE term between the observables it reads from generated maps and the requested ones.
Loss: the original (non-saturating) GAN loss with one-sided label smoothing (real label
1 - ``label_smoothing``) plus ``reg_weight`` x regressor MSE (optional R1 penalty ``r1_gamma``).
Conditions: particle (PDG 22, 11, -11, one-hot), px, py, pz, E (MeV) and log E_inc.
Sampling runs a rewritten, faster form of the same generator (``Bes3Generator.fast_forward``),
in float32 or, with ``sampling_precision='bfloat16'``, with bfloat16 convolutions.
See docs/models-gan.md for what each deviation changed and for the sampling speed.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from calobench.errors import CalobenchError
from calobench.baselines.gan.conditional_gan import ConditionalGAN


class Bes3Generator(nn.Module):
    """(z, cond) -> map / |p|, (B, 1, 11, 11), >= 0.

    The last convolution gives u = softplus(.) >= 0, the shape is exp(S min(u, u_max)) - 1 with
    S = log1p(1 / eps) (small cells are exp(.) of the pre-activation, so the 1 MeV cells of a
    3 GeV shower, 3e-4 of the seed cell, are as easy to make as the seed cell), normalised to unit
    sum; one more unit of the dense layer gives E_tot / |p| = sigmoid(.) in (0, 1), so the map
    is ratio x shape.
    """

    eps = 1e-4
    u_max = 1.5
    #: dtype of the sampling convolutions (``fast_forward``; set from the model's
    #: ``sampling_precision``): float32, or bfloat16 on CPUs with native bfloat16 dot products
    #: (avx512_bf16, AMX), where it is 1.4x faster
    sampling_dtype = torch.float32

    def __init__(self, latent: int, cond_dim: int, width: int = 16) -> None:
        super().__init__()
        self.width = width
        self.scale = math.log1p(1.0 / self.eps)
        self.dense = nn.Linear(latent + cond_dim, 1 + width * 4 * 4)  # + the E_tot / |p| logit
        self.convs = nn.Sequential(
            nn.Upsample(scale_factor=3, mode="nearest"),             # 4x4 -> 12x12
            nn.Conv2d(width, width, 4, padding=1), nn.LeakyReLU(0.2),  # -> 11x11
            nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 8, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(8, 1, 3, padding=1),
        )
        #: per-cell bias of u (121 parameters), started at the training set's mean shape
        self.cell_bias = nn.Parameter(torch.zeros(1, 1, 11, 11))

    def forward(self, z: torch.Tensor, cond: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """(z, cond) -> map / |p|; with ``scale`` (B,), the map x scale (e.g. the shower in MeV)."""
        if not torch.is_grad_enabled():
            return self.fast_forward(z, cond, scale)
        d = self.dense(torch.cat([z, cond], 1))
        h = F.leaky_relu(d[:, 1:], 0.2).view(-1, self.width, 4, 4)
        u = F.softplus(self.convs(h) + self.cell_bias).clamp_max(self.u_max)
        m = self.head(u, d[:, :1])
        return m if scale is None else m * scale[:, None, None, None]

    def head(self, u: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """u (B, 1, 11, 11) >= 0 and the ratio logit r (B, 1) -> map / |p| (B, 1, 11, 11)."""
        shape = torch.expm1(u * self.scale)
        return shape * (torch.sigmoid(r) / shape.sum((1, 2, 3)).clamp_min(1e-30)[:, None])[:, :, None, None]

    #: showers per sampling pass: the activations of a pass (256 x 16 x 11 x 11 floats, 2 MB)
    #: stay in the CPU caches; on one thread 256 measured 63 000 showers/s against 55 000-61 000
    #: for 96, 128, 192 and 384, and 50 000 for 1024
    chunk = 256

    def fast_forward(self, z: torch.Tensor, cond: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The same function as ``forward`` without autograd (sampling), rewritten for speed
        (same numbers up to float rounding, tested): passes of ``chunk`` showers, channels-last
        activations (the fast layout of the oneDNN convolutions on CPU), in-place activations
        and exact rewrites of the layers oneDNN runs slowly (``SamplingWeights``).

        On a CPU with k > 1 torch threads the passes are shared out to k Python threads that
        each run single-threaded torch ops (torch releases the GIL), and a single pass runs on
        one thread: one OpenMP region per small layer and pass costs a scheduler time slice
        whenever another process holds a core (measured 10x slower at batch 10000 and 100x
        slower at batch 1 on the shared 2-core machine); independent passes do not.
        """
        weights = self.sampling_weights()
        out = torch.empty((len(z), 1, 11, 11), dtype=z.dtype, device=z.device)
        threads = torch.get_num_threads()
        size = self.chunk
        starts = list(range(0, len(z), size))

        def passes(part: list[int]) -> None:
            for start in part:
                rows = slice(start, start + size)
                out[rows] = self._pass(z[rows], cond[rows], None if scale is None else scale[rows], weights)

        if z.device.type != "cpu" or threads == 1:
            passes(starts)
            return out
        if len(starts) == 1:  # one pass (batches up to ``chunk``): single-threaded too
            torch.set_num_threads(1)
            try:
                passes(starts)
            finally:
                torch.set_num_threads(threads)
            return out

        def worker(part: list[int]) -> None:
            torch.set_num_threads(1)  # this thread's OpenMP setting only
            with torch.inference_mode():
                passes(part)

        try:
            with ThreadPoolExecutor(min(threads, len(starts))) as pool:
                list(pool.map(worker, [starts[i::threads] for i in range(threads) if starts[i::threads]]))
        finally:
            torch.set_num_threads(threads)  # MKL's thread count is process-wide: restore it
        return out

    def sampling_weights(self) -> "SamplingWeights":
        """The rearranged weights of ``_pass``, rebuilt when a parameter changed (training steps
        and ``load_state_dict`` bump the tensors' version counters) or moved."""
        key = (self.sampling_dtype,) + tuple((id(p), p._version, p.device) for p in self.parameters())
        cached = self.__dict__.get("_sampling")
        if cached is None or cached[0] != key:
            cached = (key, SamplingWeights(self))
            self.__dict__["_sampling"] = cached
        return cached[1]

    def _pass(self, z: torch.Tensor, cond: torch.Tensor, scale: torch.Tensor | None,
              w: "SamplingWeights") -> torch.Tensor:
        """One pass of ``fast_forward``: (n, latent), (n, cond) -> (n, 1, 11, 11)."""
        n, c = len(z), self.width
        d = F.linear(torch.cat([z, cond], 1), w.dense_weight, w.dense_bias)    # (n, 1 + 16 pixels x c)
        h = F.leaky_relu_(d[:, 1:], 0.2).view(n, 16, 1, c)
        # upsampling + the 4x4 convolution: 9 phase copies of the input, one grouped 2x2 conv,
        # then each output cell picks the c values of its phase and block
        x = torch.empty((n, 16, 9, c), dtype=self.sampling_dtype, device=z.device)
        x = x.copy_(h).view(n, 4, 4, 9 * c).permute(0, 3, 1, 2)                # NHWC memory
        y = F.conv2d(x, w.phase_weight, w.phase_bias, padding=1, groups=9)       # (n, 9c, 5, 5)
        h = y.permute(0, 2, 3, 1).reshape(n, 25 * 9, c).index_select(1, w.phase_index)
        h = F.leaky_relu_(h, 0.2).view(n, 11, 11, c).permute(0, 3, 1, 2)         # (n, c, 11, 11) NHWC memory
        for weight, bias in w.middle:
            h = F.leaky_relu_(F.conv2d(h, weight, bias, padding=1), 0.2)
        # the last (1-channel) convolution: a 1x1 convolution to its 9 taps, a one-hot depthwise
        # convolution that shifts each tap into place, and the sum over taps
        taps = F.conv2d(F.conv2d(h, w.tap_weight).float(), w.tap_shift, padding=1, groups=9)
        o = taps.sum(1).add_(w.out_bias)                                         # (n, 11, 11)
        shape = torch.expm1_(F.softplus(o).clamp_max_(self.u_max).mul_(self.scale))
        ratio = torch.sigmoid(d[:, :1]) / shape.sum((1, 2)).clamp_min(1e-30)[:, None]
        if scale is not None:
            ratio = ratio * scale[:, None]
        return shape.mul_(ratio[:, :, None]).view(n, 1, 11, 11)


#: the 2x2 tap of the phase convolution that each row d = 0..3 of the 4x4 kernel lands on, for
#: output phase j = o mod 3: output o reads upsampled rows o - 1 .. o + 2, i.e. source rows
#: (o + d - 1) // 3, of which the first is (o - 1) // 3
UPSAMPLE_TAPS = [[(j + d - 1) // 3 - (j - 1) // 3 for d in range(4)] for j in range(3)]


@functools.lru_cache(maxsize=None)
def phase_index() -> torch.Tensor:
    """(121,) row of each output cell (row-major) in the phase-convolution output viewed as
    (5 x 5 positions x 9 phases, c): output row o reads source rows from (o - 1) // 3 on, which
    is position (o - 1) // 3 + 1 of the padded convolution, in phase o mod 3."""
    def start(o: int) -> int:
        return (o - 1) // 3 + 1
    return torch.tensor([(start(oy) * 5 + start(ox)) * 9 + (oy % 3) * 3 + ox % 3
                         for oy in range(11) for ox in range(11)])


class SamplingWeights:
    """The generator's weights rearranged for ``Bes3Generator._pass`` (exact rewrites):

    - the dense layer's outputs reordered pixel-major (channels last);
    - nearest upsampling x3 + Conv2d(4x4, padding 1) from 4x4 to 11x11: every output cell sees at
      most 2x2 distinct source cells, so per output phase (row mod 3, column mod 3) the pair is a
      2x2 convolution of the 4x4 source with summed kernel taps: 9 phases x 5 x 5 x c x c x 4
      multiply-adds instead of 11 x 11 x c x c x 16 (0.46x), run as one grouped convolution
      (oneDNN runs a plain one of 9c output channels on a 4x4 input slowly);
    - the last Conv2d(c8 -> 1, 3x3) as a 1x1 convolution to its 9 taps and a one-hot depthwise
      shift (oneDNN pads a 1-channel output to 16 channels).
    """

    def __init__(self, g: Bes3Generator) -> None:
        convs = [m for m in g.convs if isinstance(m, nn.Conv2d)]
        first, last = convs[0], convs[-1]
        c, dev, dtype = first.out_channels, first.weight.device, first.weight.dtype
        order = torch.cat([torch.zeros(1, dtype=torch.long),
                           1 + torch.arange(c * 16).view(c, 16).t().reshape(-1)]).to(dev)
        self.dense_weight = g.dense.weight.detach()[order]
        self.dense_bias = g.dense.bias.detach()[order]
        taps = torch.zeros(3, 2, 4, dtype=dtype, device=dev)
        for j in range(3):
            for d in range(4):
                taps[j, UPSAMPLE_TAPS[j][d], d] = 1.0
        w = torch.einsum("ytd,xse,oide->yxoits", taps, taps, first.weight.detach())  # (3, 3, c, c, 2, 2)
        low = g.sampling_dtype  # the convolutions' dtype
        self.phase_weight = w.reshape(9 * c, c, 2, 2).to(low).contiguous(memory_format=torch.channels_last)
        self.phase_bias = first.bias.detach().repeat(9).to(low)
        self.phase_index = phase_index().to(dev)
        self.middle = [(m.weight.detach().to(low).contiguous(memory_format=torch.channels_last),
                        m.bias.detach().to(low)) for m in convs[1:-1]]
        self.tap_weight = (last.weight.detach()[0].flatten(1).t()[:, :, None, None]   # (9 taps, c8, 1, 1)
                           .to(low).contiguous(memory_format=torch.channels_last))
        self.tap_shift = torch.eye(9, dtype=dtype, device=dev).view(9, 1, 3, 3).contiguous(
            memory_format=torch.channels_last)
        self.out_bias = last.bias.detach() + g.cell_bias.detach()[0, 0]        # (11, 11)


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, arXiv:1606.03498).

    For each sample, ``n_kernels`` features measure how close it is to the other samples of
    the batch (L1 distance of learned projections), which lets the discriminator detect a
    generator that collapses to few modes. Input (B, in_features) -> output (B, n_kernels).
    """

    def __init__(self, in_features: int, n_kernels: int = 8, kernel_dim: int = 4) -> None:
        super().__init__()
        self.n_kernels = n_kernels
        self.kernel_dim = kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.T).view(-1, self.n_kernels, self.kernel_dim)  # (B, K, D)
        dist = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # (B, B, K)
        return torch.exp(-dist).sum(1) - 1.0  # exclude self (exp(0) = 1)


def soft_sparsity(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Differentiable fraction of non-empty cells: mean over cells of tanh(x / scale). x: (B, cells)."""
    return torch.tanh(x / scale).mean(1, keepdim=True)


class Bes3Discriminator(nn.Module):
    """(map / |p| (B, 1, 11, 11), cond, |p| MeV) -> logit (B,)."""

    def __init__(self, cond_dim: int, threshold: float, e_max: float, dropout: float = 0.1,
                 mbd_kernels: int = 8) -> None:
        super().__init__()
        self.threshold = threshold
        self.log_scale = math.log1p(e_max / threshold)

        def block(a, b, k):
            return [nn.Conv2d(a, b, k, padding=0 if k == 2 else 1), nn.LeakyReLU(0.2), nn.Dropout(dropout)]

        self.convs = nn.Sequential(*block(2, 32, 2), *block(32, 16, 3), *block(16, 16, 3), *block(16, 16, 3),
                                   nn.AvgPool2d(2), nn.Flatten())  # 10x10 -> 5x5
        feat = 16 * 5 * 5
        self.mbd = MinibatchDiscrimination(feat, mbd_kernels, 4)
        self.head = nn.Sequential(nn.Linear(feat + mbd_kernels + cond_dim + 3, 20), nn.LeakyReLU(0.2),
                                  nn.Linear(20, 1))

    def forward(self, m: torch.Tensor, cond: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        # the seed's input (map / |p|) and a log view in units of the readout threshold, in which
        # the few-MeV cells and the exact zeros of the real maps are visible
        logview = torch.log1p(m * (p / self.threshold)[:, None, None, None]) / self.log_scale
        h = self.convs(torch.cat([m, logview], 1))
        flat = m.flatten(1)
        esum = flat.sum(1, keepdim=True)                         # E_tot / |p|
        e_p_diff = esum - 1.0                                    # (E_tot - |p|) / |p|
        sparsity = soft_sparsity(flat * p[:, None], self.threshold)
        x = torch.cat([h, self.mbd(h), cond, esum, e_p_diff, sparsity], 1)
        return self.head(x).squeeze(1)


class Bes3Regressor(nn.Module):
    """Hit map (MeV, (B, 1, 11, 11)) -> reconstructed observables (B, n_out), standardised."""

    def __init__(self, n_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(16, 16, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(16 * 5 * 5, 64), nn.LeakyReLU(0.2), nn.Linear(64, n_out))

    def forward(self, showers: torch.Tensor) -> torch.Tensor:
        return self.net(torch.log1p(showers / 10.0))


#: ``sampling_precision`` option -> dtype of the sampling convolutions. bfloat16 (the CPU's native
#: bfloat16 dot products, float32 sums) is 1.4x faster on this project's CPU; on the quick model
#: its showers differ from float32 ones by 0.7 % per cell (median) and a classifier cannot tell
#: them apart (docs/models-gan.md). Training is always float32.
SAMPLING_PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class Bes3GAN(ConditionalGAN):
    """The BESIII EMC GAN with minibatch discrimination and a regressor constraint."""

    name = "bes3-gan"
    seed_document = "004"
    datasets = ("bes3-11x11",)
    description = "BESIII EMC GAN: 46k-parameter generator, minibatch discrimination, regressor constraint"
    presets = {
        "tiny": {"latent_dim": 16, "width": 8, "epochs": 2, "batch_size": 64, "lr": 1e-3,
                 "regressor_epochs": 1, "reg_weight": 1.0, "label_smoothing": 0.1, "threshold_fakes": True,
                 "max_train_events": 600, "sampling_precision": "float32"},
        "quick": {"latent_dim": 128, "width": 16, "epochs": 40, "min_steps": 25, "batch_size": 64, "lr": 2e-4,
                  "regressor_epochs": 10, "reg_weight": 1.0, "label_smoothing": 0.1, "threshold_fakes": True,
                  "max_train_events": 20000, "sampling_precision": "float32"},
        "full": {"latent_dim": 128, "width": 16, "epochs": 300, "min_steps": 50, "batch_size": 256, "lr": 1e-4,
                 "regressor_epochs": 30, "reg_weight": 1.0, "label_smoothing": 0.1, "threshold_fakes": True,
                 "max_train_events": None, "sampling_precision": "float32"},
    }

    def build(self) -> None:
        self.generator = Bes3Generator(self.latent_dim, self.cond_dim, int(self.config["width"]))
        self.set_sampling_precision(self.config.get("sampling_precision", "float32"))
        self.discriminator = Bes3Discriminator(self.cond_dim, float(self.dataset.geometry.threshold),
                                               float(self.dataset.energy_range[1]))
        self.n_obs = 1 + len(self.continuous)  # log E_inc and the continuous conditions
        self.regressor = Bes3Regressor(self.n_obs)

    def set_sampling_precision(self, precision: str) -> None:
        """'float32' or 'bfloat16': the dtype of the generator's convolutions when sampling
        (also for a loaded model: ``Bes3GAN.load(folder).set_sampling_precision('bfloat16')``)."""
        if precision not in SAMPLING_PRECISIONS:
            raise CalobenchError(f"model {self.name}: sampling_precision {precision!r} is not one of "
                                 f"{', '.join(SAMPLING_PRECISIONS)}")
        self.config["sampling_precision"] = precision
        self.generator.sampling_dtype = SAMPLING_PRECISIONS[precision]

    def prepare_fit(self, train) -> None:
        """Start the E_tot / |p| unit at the training set's mean ratio (its bias is the logit) and
        the per-cell bias at the training set's mean shape (in u), so that the adversarial epochs
        learn the fluctuations, not the scale and the mean profile."""
        raw = self.raw_conditions(train.energies, train.conditions, "training sample")
        p = np.sqrt(raw["px"] ** 2 + raw["py"] ** 2 + raw["pz"] ** 2)
        p = np.where(p > 0, p, raw["E_inc"])
        showers = np.asarray(train.showers, np.float64)
        etot = showers.sum(1)
        ratio = float(np.clip(np.mean(etot / p), 0.01, 0.99))
        g = self.generator
        # mean u of the real shapes (E_cell / E_tot = eps expm1(S u)), as softplus(cell_bias)
        u = np.log1p(showers / np.maximum(etot, 1e-30)[:, None] / g.eps).mean(0) / g.scale
        u = np.maximum(u, 1e-4)
        with torch.no_grad():
            g.dense.bias[0] = math.log(ratio / (1.0 - ratio))
            g.cell_bias.copy_(torch.from_numpy(np.log(np.expm1(u))).float().view(1, 1, 11, 11))

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator, "regressor": self.regressor}

    def after_move(self) -> None:
        self.generator.__dict__.pop("_sampling", None)  # rearranged weights: rebuilt on the new device

    @staticmethod
    def momentum(raw: dict[str, torch.Tensor]) -> torch.Tensor:
        """|p| in MeV from px, py, pz (E_inc where the momentum is zero)."""
        p = torch.sqrt(raw["px"] ** 2 + raw["py"] ** 2 + raw["pz"] ** 2)
        return torch.where(p > 0, p, raw["E_inc"])

    def generate(self, z, cond, energies, raw):
        return self.generator(z, cond, self.momentum(raw)).flatten(1)

    def make_optimizers(self):
        lr = float(self.config["lr"])
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_r = torch.optim.Adam(self.regressor.parameters(), lr=1e-3)
        return {"generator": self.opt_g, "discriminator": self.opt_d, "regressor": self.opt_r}

    def pretrain(self, x, cond, energies, raw):
        """Train the regressor on the real showers (MSE on the standardised observables)."""
        target = cond[:, :self.n_obs]
        maps = x.view(-1, 1, 11, 11)
        n, batch = len(x), int(self.config["batch_size"])
        gen = torch.Generator().manual_seed(self.seed + 31)
        self.regressor.train()
        losses = []
        for _ in range(int(self.config["regressor_epochs"])):
            perm = torch.randperm(n, generator=gen).to(x.device)
            total = 0.0
            for s in range(max(n // batch, 1)):
                idx = perm[s * batch:(s + 1) * batch]
                loss = F.mse_loss(self.regressor(maps[idx]), target[idx])
                self.opt_r.zero_grad(set_to_none=True)
                loss.backward()
                self.opt_r.step()
                total += loss.item()
            losses.append(total / max(n // batch, 1))
        for q in self.regressor.parameters():
            q.requires_grad_(False)
        self.regressor.eval()
        return {"regressor_mse": losses}

    def train_step(self, x, cond, energies, raw, rng):
        p = self.momentum(raw)
        real = x.view(-1, 1, 11, 11) / p[:, None, None, None]
        b = real.shape[0]
        self.regressor.eval()
        for q in self.regressor.parameters():
            q.requires_grad_(False)
        z = torch.randn(b, self.latent_dim, generator=rng, device=x.device)
        fake = self.generator(z, cond)
        if self.config.get("threshold_fakes", True):
            # the readout threshold as at sampling (cells under it read zero), with a
            # straight-through gradient, so the discriminator judges the maps that are sampled
            below = (fake.detach() * p[:, None, None, None] < float(self.dataset.geometry.threshold)).float()
            fake = fake - (fake * below).detach()
        ones, zeros = torch.ones(b, device=x.device), torch.zeros(b, device=x.device)
        smooth = torch.full((b,), 1.0 - float(self.config["label_smoothing"]), device=x.device)
        gamma = float(self.config.get("r1_gamma", 0.0))
        if gamma > 0:
            real.requires_grad_(True)
        d_real = self.discriminator(real, cond, p)
        d_fake = self.discriminator(fake.detach(), cond, p)
        loss_d = F.binary_cross_entropy_with_logits(d_real, smooth) + F.binary_cross_entropy_with_logits(d_fake, zeros)
        if gamma > 0:  # R1 penalty (Mescheder et al. 2018, arXiv:1801.04406): 0.5 gamma E|grad D(real)|^2
            grad, = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            loss_d = loss_d + 0.5 * gamma * grad.pow(2).sum((1, 2, 3)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        adv = F.binary_cross_entropy_with_logits(self.discriminator(fake, cond, p), ones)
        reg = F.mse_loss(self.regressor(fake * p[:, None, None, None]), cond[:, :self.n_obs])
        loss_g = adv + float(self.config["reg_weight"]) * reg
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {"discriminator": loss_d.item(), "generator": adv.item(), "regressor": reg.item()}
