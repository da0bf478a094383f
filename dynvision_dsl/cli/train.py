"""`dynv train`: train a spec on labelled images."""
from __future__ import annotations

import os
import sys

from .common import add_device_arg, add_spec_args


def register(sub):
    text = "train a spec on labelled images (cross-entropy at every labelled step, Adam by default)"
    s = sub.add_parser("train", help=text, description=text)
    add_spec_args(s)
    s.add_argument("--data", default="digits", help="digits (default) or folder:PATH (one sub-folder per class)")
    s.add_argument("--epochs", type=int, default=10, help="passes over the training images (default 10)")
    s.add_argument("--batch", type=int, default=32, help="images per optimisation step, over all processes "
                                                       "(default 32)")
    s.add_argument("--lr", type=float, default=1e-3, help="the learning rate (default 1e-3)")
    s.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of the images (default 0.2)")
    s.add_argument("--seed", type=int, default=0, help="seed of weights, split and shuffling (default 0)")
    s.add_argument("--out", help="run folder (default: runs/train-SPEC)")
    s.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    s.add_argument("--force", action="store_true", help="start afresh in an existing run folder, replacing it")
    s.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    _data_args(s.add_argument_group("data (streaming, held-out folder, augmentation, normalisation)"))
    _regime_args(s.add_argument_group("training regime (DynVision's; see docs/TRAINING.md)"))
    return s


def _data_args(g) -> None:
    g.add_argument("--val-data", help="a separate held-out folder:PATH (same class sub-folders; default: "
                                      "--test-fraction of --data)")
    g.add_argument("--workers", type=int, default=0, help="processes decoding a folder's images (default 0: "
                                                          "in the training process)")
    g.add_argument("--augment", action="store_true", help="random resized crop + horizontal flip of the training "
                                                          "images (held-out images never)")
    g.add_argument("--normalize", choices=("none", "imagenet", "dataset"), default="none",
                   help="input normalisation: ImageNet's channel mean/std, the training images' own (estimated "
                        "from a sample), or none (default); checkpoints record it for run and experiment")
    g.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimiser steps (smoke runs; the "
                                                              "LR schedule ends there too)")


def _regime_args(g) -> None:
    g.add_argument("--pattern", default="1", help="presentation pattern stretched over the steps, 1 shown, "
                                                  "0 blank (default 1: always shown)")
    g.add_argument("--reaction-time", default="0ms", metavar="DURATION",
                   help="labels ignored for this long after each onset, e.g. 8ms (default 0ms)")
    g.add_argument("--activity-loss", type=float, default=0.0, metavar="W",
                   help="weight of the mean absolute area output added to the loss (default 0)")
    g.add_argument("--lr-scale", action="append", metavar="KIND=FACTOR",
                   help="learning-rate factor of a connection kind: recurrence, feedback, feedforward, readout "
                        "or area (repeatable)")
    g.add_argument("--tbptt", type=int, default=0, metavar="K", help="truncated BPTT: cut the graph every K steps "
                                                                     "(default 0: never)")
    g.add_argument("--recompute", default="0", metavar="K|auto",
                   help="checkpoint every K steps and recompute them in backward: the same gradients for less "
                        "memory, at the cost of a second forward; auto: segments balanced for the lowest peak "
                        "(default 0: off)")
    g.add_argument("--clip", type=float, metavar="NORM", help="clip the gradient norm to NORM")
    g.add_argument("--schedule", default="none", help="learning-rate schedule: none (default), cosine or step")
    g.add_argument("--warmup", type=int, default=0, metavar="N", help="linear warmup over N optimiser steps")
    g.add_argument("--optimizer", default="adam", help="adam (default), adamw or sgd (momentum 0.9)")
    g.add_argument("--weight-decay", type=float, help="weight decay (default: the optimizer's, 0.01 for adamw)")
    g.add_argument("--precision", default="32", help="32 (default) or bf16 (autocast; states stay fp32)")
    add_device_arg(g)


def run(args) -> int:
    """`dynv train`: problems the user can fix print `dynv: ...` and give 1."""
    from ..errors import NonFiniteError
    from ..science.train import Regime, TrainError, parse_duration, parse_lr_scale, parse_recompute, train
    from ..util.params import parse_set

    try:
        regime = Regime(pattern=args.pattern, reaction_ms=parse_duration(args.reaction_time),
                        activity_loss=args.activity_loss, lr_scale=parse_lr_scale(args.lr_scale), tbptt=args.tbptt,
                        recompute=parse_recompute(args.recompute),
                        clip=args.clip, schedule=args.schedule, warmup=args.warmup, optimizer=args.optimizer,
                        weight_decay=args.weight_decay, precision=args.precision, device=args.device)
        train(args.file, parse_set(args.set), data=args.data, epochs=args.epochs, batch=args.batch, lr=args.lr,
              test_fraction=args.test_fraction, seed=args.seed, out=args.out, resume=args.resume,
              force=args.force, progress=not args.no_progress, command_line=getattr(args, "command_line", None),
              regime=regime, val_data=args.val_data, workers=args.workers, augment=args.augment,
              normalize=args.normalize, max_steps=args.max_steps)
    except (TrainError, NonFiniteError) as exc:
        if int(os.environ.get("RANK", "0")) == 0:  # the other ranks raise the same, or an echo of it
            print(f"dynv: {exc}", file=sys.stderr)
        return 1
    return 0
