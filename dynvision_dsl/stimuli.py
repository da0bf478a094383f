"""Stimuli for `dynv run`: a built-in procedural image, or the user's image file."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import ImageError  # noqa: F401 (re-exported: stimuli.ImageError)


def builtin_image(channels: int, height: int, width: int) -> torch.Tensor:
    """A deterministic test image (C, H, W) in [0, 1]: an oriented grating under
    a Gaussian aperture, with a colour tint per channel. No download, no data."""
    ys = torch.linspace(-1, 1, height).view(-1, 1)
    xs = torch.linspace(-1, 1, width).view(1, -1)
    theta = math.pi / 6
    u = xs * math.cos(theta) + ys * math.sin(theta)
    grating = 0.5 + 0.5 * torch.sin(2 * math.pi * 3 * u)
    aperture = torch.exp(-(xs ** 2 + ys ** 2) / (2 * 0.45 ** 2))
    base = grating * aperture
    tints = [1.0, 0.7, 0.4, 0.85, 0.55]
    return torch.stack([base * tints[c % len(tints)] for c in range(channels)])


MAX_PIXELS = 89_478_485  # Pillow's own bound for a decompression bomb (about 89 megapixels)
TENSOR_SUFFIXES = (".npy", ".pt")


def load_image(path: str | Path, channels: int, height: int, width: int) -> torch.Tensor:
    """Read an image file (anything Pillow reads; 16-bit and float images keep their values)
    or a tensor (.npy, .pt: (H, W) or (C, H, W) in [0, 1]) as (C, H, W) in [0, 1], converted and
    resized to the model's input. ImageError for a file that is missing, empty, not an image,
    damaged, over MAX_PIXELS, or holds NaN, inf or values outside [0, 1] (nothing is zeroed)."""
    data = read_image(path, channels)
    data = F.interpolate(data.unsqueeze(0), size=(height, width), mode="bilinear", align_corners=False)[0]
    return data.clamp(0, 1)


def read_image(path: str | Path, channels: int) -> torch.Tensor:
    """Read an image file or tensor as `load_image` does, at its own size (C, H, W) in [0, 1]
    (for a random crop that should see the full resolution before it is resized)."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image")
    if not path.is_file():
        raise ImageError(f"no image at {path}")
    if path.stat().st_size == 0:
        raise ImageError(f"{path} is empty (0 bytes), not an image")
    data = _read_tensor(path) if path.suffix.lower() in TENSOR_SUFFIXES else _read_picture(path, channels)
    data = _finite_unit(path, data.float())
    return _channels(data, channels)


def _read_picture(path: Path, channels: int) -> torch.Tensor:
    """A picture file as (c, H, W) floats; its size is checked before anything is decoded."""
    import warnings

    from PIL import Image, UnidentifiedImageError  # pillow ships with matplotlib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, with its size
            img = Image.open(path)
    except Image.DecompressionBombError:
        raise ImageError(f"{path} has more pixels than the {MAX_PIXELS / 1e6:.0f} megapixels an image may have "
                         f"(a decompression bomb?); shrink it first") from None
    except UnidentifiedImageError:
        raise ImageError(_unidentified(path)) from None
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from None
    with img:
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise ImageError(f"{path} is {w} x {h} ({w * h / 1e6:.0f} megapixels), more than the "
                             f"{MAX_PIXELS / 1e6:.0f} megapixels an image may have; shrink it first")
        try:
            return _pixels(img, channels)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"{path} is damaged or truncated ({exc}); write it again") from None


def _pixels(img, channels: int) -> torch.Tensor:
    """(c, H, W) floats: 8-bit images /255 (grey for a one-channel model, else RGB), 16-bit ones
    /65535, float ones as stored (Pillow's own conversion would clip them to 0..255)."""
    import numpy as np

    img.load()
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
    elif img.mode.startswith("I"):  # 16-bit (I;16*) or 32-bit integers: 16-bit PNG and TIFF
        arr = np.asarray(img, dtype=np.float32) / 65535.0
    else:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(arr.copy())  # a copy: Pillow's buffer is read-only


def _read_tensor(path: Path) -> torch.Tensor:
    """A .npy (no pickles) or .pt (tensors only) file holding (H, W) or (C, H, W)."""
    import numpy as np

    try:
        if path.suffix.lower() == ".npy":
            data = torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float32))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # numpy and torch raise many types for bad bytes
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ImageError(f"{path} is not a readable {path.suffix} tensor ({why})") from None
    if not isinstance(data, torch.Tensor) or data.dim() not in (2, 3) or 0 in data.shape:
        what = f"shape {list(data.shape)}" if isinstance(data, torch.Tensor) else f"a {type(data).__name__}"
        raise ImageError(f"{path} holds {what}; an image tensor is (H, W) or (C, H, W)")
    if data.is_complex() or data.dtype == torch.bool:
        raise ImageError(f"{path} holds {data.dtype} values; an image tensor holds real numbers in [0, 1]")
    return data if data.dim() == 3 else data.unsqueeze(0)


def _finite_unit(path: Path, data: torch.Tensor) -> torch.Tensor:
    """`data` when every value is finite and in [0, 1]; otherwise an ImageError saying where not."""
    bad = ~torch.isfinite(data)
    if bad.any():
        c, y, x = (int(i) for i in bad.nonzero()[0])
        kind = "NaN" if torch.isnan(data[c, y, x]) else "inf"
        raise ImageError(f"{path} holds {int(bad.sum())} non-finite value{'s' * (int(bad.sum()) != 1)} "
                         f"({kind} first at channel {c}, row {y}, column {x}); images must be finite")
    lo, hi = float(data.min()), float(data.max())
    if lo < 0 or hi > 1:
        raise ImageError(f"{path} holds values from {lo:g} to {hi:g}; scale them to [0, 1]")
    return data


def _channels(data: torch.Tensor, channels: int) -> torch.Tensor:
    """(c, H, W) to the model's channels: grey replicated, colour averaged to grey, equal counts kept."""
    if data.shape[0] == channels:
        return data
    grey = data.mean(0, keepdim=True) if data.shape[0] != 1 else data
    return grey.expand(channels, -1, -1)


_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF",
          b"BM": "BMP", b"RIFF": "WebP"}


def _unidentified(path: Path) -> str:
    """Why Pillow could not open a file: a damaged picture (by its first bytes), text, or other."""
    with path.open("rb") as fh:
        head = fh.read(256)
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if kind is not None:
        return f"{path} is a truncated or damaged {kind} file; write it again"
    try:
        text = all(c.isprintable() or c in "\n\r\t" for c in head.decode("utf-8"))
    except UnicodeDecodeError:
        text = False
    what = "a text file" if text else "in no format Pillow reads"
    return f"{path} is not an image: it is {what} (give a PNG, JPEG, TIFF, ... or a .npy/.pt tensor)"
