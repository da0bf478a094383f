"""`dynv train`: train a spec on labelled images."""
from __future__ import annotations

from .common import add_spec_args


def register(sub):
    text = "train a spec on labelled images (cross-entropy at every present step, Adam)"
    s = sub.add_parser("train", help=text, description=text)
    add_spec_args(s)
    s.add_argument("--data", default="digits", help="digits (default) or folder:PATH (one sub-folder per class)")
    s.add_argument("--epochs", type=int, default=10, help="passes over the training images (default 10)")
    s.add_argument("--batch", type=int, default=32, help="images per optimisation step, over all processes "
                                                       "(default 32)")
    s.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    s.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of the images (default 0.2)")
    s.add_argument("--seed", type=int, default=0, help="seed of weights, split and shuffling (default 0)")
    s.add_argument("--out", help="run folder (default: runs/train-SPEC)")
    s.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    s.add_argument("--force", action="store_true", help="start afresh in an existing run folder, replacing it")
    s.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    # data (science.data): streaming, held-out folder, augmentation, normalisation, smoke runs
    s.add_argument("--val-data", help="a separate held-out folder:PATH (same class sub-folders; default: "
                                      "--test-fraction of --data)")
    s.add_argument("--workers", type=int, default=0, help="processes decoding a folder's images (default 0: "
                                                          "in the training process)")
    s.add_argument("--augment", action="store_true", help="random resized crop + horizontal flip of the training "
                                                          "images (held-out images never)")
    s.add_argument("--normalize", choices=("none", "imagenet", "dataset"), default="none",
                   help="input normalisation: ImageNet's channel mean/std, the training images' own (estimated "
                        "from a sample), or none (default); checkpoints record it for run and experiment")
    s.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (smoke runs)")
    return s


def run(args) -> int:
    from ..train import run_cli

    return run_cli(args)
