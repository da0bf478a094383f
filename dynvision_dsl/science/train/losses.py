"""The training objective: cross-entropy at the labelled steps, plus the activity penalty."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _loss(logits: torch.Tensor, labels: torch.Tensor, steps: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy at the steps in `steps` ((T,) bool, see presentation.label_steps: the
    readout's silent steps, blank frames and the reaction time are left out); 'mean' averages
    over steps and images, 'sum' sums images of per-image means. Other steps' logits get no gradient."""
    present = logits[:, steps.to(logits.device)]
    loss = F.cross_entropy(present.transpose(1, 2), labels[:, None].expand(-1, present.shape[1]),
                           reduction=reduction)
    return loss if reduction == "mean" else loss / present.shape[1]


def activity(responses: dict[str, list[torch.Tensor | None]]) -> torch.Tensor:
    """The activity penalty: the mean absolute output (L1 per unit, as DynVision's ActivityLoss in
    its default 'absolute' mode) of every area at every step it is present, blank frames and
    reaction time included; each (area, step) weighs the same; in fp32."""
    values = [v.float().abs().mean() for seq in responses.values() for v in seq if v is not None]
    if not values:
        raise ValueError("no area is present at any step, so there is no activity to penalise")
    return torch.stack(values).mean()
