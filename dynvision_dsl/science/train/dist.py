"""This process's place in a torchrun job, and the device it trains on."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

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
    """Join the torchrun job named by WORLD_SIZE/RANK/LOCAL_RANK, or run alone; the device
    (--device) is cuda:LOCAL_RANK (or cuda) for 'cuda', or by default when CUDA is available, else the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = _use_cuda(device)
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return _Dist(0, 1, torch.device("cuda" if cuda else "cpu"), False)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), device, owns)


def _use_cuda(device: str | None) -> bool:
    """Whether to train on CUDA: --device cuda (refused when CUDA is absent), cpu, or auto."""
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda: CUDA is not available (no CUDA build of torch, or no GPU visible); "
                         "pass --device cpu")
    return device == "cuda" or (device is None and torch.cuda.is_available())
