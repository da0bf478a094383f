"""`dynv experiment`: probe a spec with one of DynVision's stimulus protocols."""
from __future__ import annotations

PROTOCOLS = ("duration", "contrast", "interval", "noise")


def register(sub):
    s = sub.add_parser("experiment", help="probe a spec with a stimulus protocol; write a CSV and PNGs",
                       description="Probe a spec with one of DynVision's stimulus protocols and write a CSV of "
                                   "every measured value and a PNG per measure (one curve per --sweep variant).")
    s.add_argument("name", choices=PROTOCOLS, help="the protocol")
    s.add_argument("file", help="the .dyn spec")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")
    s.add_argument("--sweep", action="append", metavar="NAME=V1,V2,...",
                   help="one variant per value, drawn as one curve each (repeat for a grid)")
    s.add_argument("--checkpoint", help="weights from `dynv train` (a checkpoint or a state dict)")
    s.add_argument("--partial-weights", action="store_true",
                   help="load only the checkpoint's tensors that fit (by name and shape) even when it fits no "
                        "variant exactly; the rest keep their seeded values")
    s.add_argument("--images", default="digits",
                   help="digits (default: the held-out split), folder:PATH (a seeded sample of "
                        "--n-images of its images), or an image file")
    s.add_argument("--n-images", type=int, default=32, help="how many images to average over (default 32)")
    s.add_argument("--levels", metavar="V1,V2,...",
                   help="the protocol's values (durations or gaps in steps, contrasts, SNRs)")
    s.add_argument("--intro", type=int, default=40,
                   help="blank steps before the first presentation, for the baseline to settle (default 40)")
    s.add_argument("--on", type=int, default=8, help="interval: steps of each presentation (default 8)")
    s.add_argument("--batch", type=int, default=32, help="images per forward pass (default 32)")
    s.add_argument("--seed", type=int, default=0, help="seed of weights, image choice and noise (default 0)")
    s.add_argument("--out", help="output folder (default: runs/experiment-NAME-SPEC)")
    s.add_argument("--force", action="store_true", help="replace existing outputs")
    return s


def run(args) -> int:
    from ..experiment import run_cli

    return run_cli(args)
