"""What the model sees and when a label counts: the presentation pattern stretched over the
steps, its onsets, and the steps that carry a label (after the reaction time, while shown)."""
from __future__ import annotations

import torch


def stretch(pattern: str, steps: int) -> torch.Tensor:
    """The pattern (one char per slot, '1' shown, '0' blank) over `steps` steps, by nearest
    index as DynVision (and `F.interpolate(mode='nearest')`) do: step t shows slot
    floor(t * len / steps). '1011' over 8 steps is 11001111. Returns (steps,) bool."""
    slots = torch.tensor([c == "1" for c in pattern])
    index = torch.div(torch.arange(steps) * len(pattern), steps, rounding_mode="floor")
    return slots[index]


def onsets(shown: torch.Tensor) -> torch.Tensor:
    """(T,) bool: the steps at which the image appears (shown now, blank or nothing before)."""
    before = torch.cat([torch.zeros(1, dtype=torch.bool), shown[:-1]])
    return shown & ~before


def label_steps(shown: torch.Tensor, dt: float, reaction_ms: float, first: int) -> torch.Tensor:
    """(T,) bool: the steps whose logits carry the label: the image is shown, the readout is
    present (t >= first), and at least `reaction_ms` has passed since the latest onset."""
    steps = shown.shape[0]
    last_onset = torch.cummax(torch.where(onsets(shown), torch.arange(steps), torch.full((steps,), -1)), 0).values
    waited = (torch.arange(steps) - last_onset) * float(dt) >= reaction_ms - 1e-9
    return shown & waited & (torch.arange(steps) >= first)


def show(images: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
    """Static images (B, C, H, W) or sequences (B, T, C, H, W) as the model's input, blank
    (zero) frames where the pattern says 0; an all-shown pattern leaves the input as it is."""
    if bool(shown.all()):
        return images
    frames = images if images.dim() == 5 else images.unsqueeze(1).expand(-1, shown.shape[0], *images.shape[1:])
    return frames * shown.to(frames.device, frames.dtype).view(1, -1, *([1] * (frames.dim() - 2)))
