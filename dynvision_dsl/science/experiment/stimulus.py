"""Stimuli as (B, T, C, H, W) tensors in which blank frames are zeros, and the seeded
noise of the noise protocol (six kinds, one sample for all steps or a fresh one per step)."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def blank(img: torch.Tensor, steps: int, value: float = 0.0) -> torch.Tensor:
    """`steps` blank frames (of intensity `value`) for every image of the batch `img` (B, C, H, W)."""
    return img.new_full((img.shape[0], steps) + tuple(img.shape[1:]), value)


def show(img: torch.Tensor, steps: int, windows: list[tuple[int, int]]) -> torch.Tensor:
    """Blank frames with `img` shown in each [first, end) window."""
    x = blank(img, steps)
    for lo, hi in windows:
        x[:, lo:hi] = img.unsqueeze(1)
    return x


def generator(seed: int, index: int) -> torch.Generator:
    """A torch generator seeded by (seed, image index) only, so every level and variant sees the same draw."""
    state = np.random.SeedSequence([seed % 2 ** 32, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def noisy(kind: str, img: torch.Tensor, snr: float, frames: int, gen: torch.Generator,
          static: bool = False) -> torch.Tensor:
    """`frames` noisy copies (frames, C, H, W) of one image at signal-to-noise `snr`; `static`
    draws one sample and repeats it, otherwise every frame has its own."""
    draws = 1 if static else frames
    out = _KINDS[kind](img, snr, draws, gen)
    return out.expand(frames, *out.shape[1:]).clone() if static else out


def _sigma(img: torch.Tensor, snr: float) -> float:
    return float(img.std(correction=0)) / snr


def _gaussian(img, snr, n, gen):
    """The image plus white Gaussian noise of sigma = std(image) / SNR (not clipped)."""
    return img + _sigma(img, snr) * torch.randn((n,) + tuple(img.shape), generator=gen)


def _uniform(img, snr, n, gen):
    """The image plus uniform noise of the same sigma (half-width sigma * sqrt 3)."""
    u = torch.rand((n,) + tuple(img.shape), generator=gen) * 2 - 1
    return img + _sigma(img, snr) * math.sqrt(3) * u


def _gaussiancorr(img, snr, n, gen, width: float = 2.0):
    """Gaussian noise smoothed by a Gaussian kernel of `width` pixels (spatially correlated),
    rescaled to unit variance, times sigma."""
    z = torch.randn((n,) + tuple(img.shape), generator=gen)
    radius = int(math.ceil(3 * width))
    g = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2 / (2 * width ** 2))
    g = g / g.sum()
    c = img.shape[0]
    flat = z.reshape(n * c, 1, *img.shape[1:])
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="circular"), g.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="circular"), g.view(1, 1, -1, 1))
    z = flat.reshape(z.shape)
    z = z / z.flatten(1).std(1, correction=0).clamp_min(1e-12).view(-1, *([1] * img.dim()))
    return img + _sigma(img, snr) * z


def _poisson(img, snr, n, gen):
    """Photon noise: counts Poisson(lam * image) / lam, lam chosen so that the noise's mean
    sigma, sqrt(mean(image) / lam), is std(image) / SNR."""
    mean, std = float(img.mean()), float(img.std(correction=0))
    if mean <= 0 or std <= 0:
        return img.expand(n, *img.shape).clone()
    lam = mean * snr ** 2 / std ** 2
    rate = (img.clamp_min(0) * lam).expand(n, *img.shape).contiguous()
    return torch.poisson(rate, generator=gen) / lam


def _saltpepper(img, snr, n, gen):
    """A share 1 / (1 + SNR) of the pixels (all channels alike) set to 0 or 1 at random."""
    share = 1.0 / (1.0 + snr)
    shape = (n, 1) + tuple(img.shape[1:])
    hit = torch.rand(shape, generator=gen) < share
    salt = (torch.rand(shape, generator=gen) < 0.5).to(img.dtype)
    x = img.expand(n, *img.shape)
    return torch.where(hit, salt.expand_as(x), x)


def _phasescrambled(img, snr, n, gen):
    """The image with its Fourier phases shifted by w times those of white noise, w = min(1, 1/SNR):
    the amplitude spectrum is kept; at SNR <= 1 the phases are fully scrambled."""
    w = min(1.0, 1.0 / snr)
    spectrum = torch.fft.fft2(img.double())
    phase = torch.fft.fft2(torch.rand((n,) + tuple(img.shape), generator=gen, dtype=torch.float64)).angle()
    mirrored = torch.roll(torch.flip(phase, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))  # the phase at -k
    phase = (phase - mirrored) / 2  # odd in k, 0 at the self-conjugate bins: the result stays real for any w
    mixed = torch.polar(spectrum.abs().expand(n, *img.shape), spectrum.angle() + w * phase)
    return torch.fft.ifft2(mixed).real.to(img.dtype)


_KINDS = {"gaussian": _gaussian, "uniform": _uniform, "gaussiancorr": _gaussiancorr, "poisson": _poisson,
          "saltpepper": _saltpepper, "phasescrambled": _phasescrambled}
