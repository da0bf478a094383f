"""This process's place in a torchrun job, and the device it trains on."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ...util.device import resolve_device
from .options import TrainError


@dataclass
class _Dist:
    """This process's place in a torchrun job (world 1 for a plain process)."""

    rank: int
    world: int
    device: torch.device
    owns_group: bool  # we created the process group, so we destroy it

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _distributed(device: str | None = None) -> _Dist:
    """Join the torchrun job named by WORLD_SIZE/RANK/LOCAL_RANK, or run alone, on --device
    (util.device: auto, cpu, cuda, cuda:N); under torchrun 'cuda' is cuda:LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    chosen = resolve_device(device)
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return _Dist(0, 1, chosen, False)
    cuda = chosen.type == "cuda"
    if cuda and device not in (None, "auto", "cuda"):
        raise TrainError(f"--device {device} names one GPU, but under torchrun each process trains on "
                         f"cuda:LOCAL_RANK; pass --device cuda")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(chosen)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), chosen, owns)
