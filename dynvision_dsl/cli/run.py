"""`dynv run`: simulate a spec on one stimulus; save its responses and a plot."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..runtime import PRECISIONS
from .common import add_device_arg, add_spec_args, params, read_spec, trained_model, warnings_printed

OUTPUTS = ("responses.pt", "responses.png", "responses.json")


def register(sub):
    s = sub.add_parser("run", help="simulate a spec on a stimulus and save responses and a plot",
                       description="simulate a spec on a stimulus and save responses and a plot")
    add_spec_args(s)
    s.add_argument("--image", help="an image file (default: a built-in grating)")
    s.add_argument("--weights", help="a checkpoint of dynv train (best.pt, last.pt; its --set values apply "
                                     "first) or a state dict saved with torch.save")
    s.add_argument("--partial-weights", action="store_true",
                   help="load only the tensors of --weights that fit (by name and shape); the rest stay seeded")
    s.add_argument("--out", help="output folder (default: runs/SPEC)")
    s.add_argument("--seed", type=int, default=0, help="seed of the initial weights and of the run's noise() samples (default 0): "
                   "the same seed gives the same responses")
    s.add_argument("--force", action="store_true", help="replace existing outputs")
    add_device_arg(s)
    s.add_argument("--cuda-graphs", action="store_true", help="replay the steady-state step from a CUDA graph "
                   "(on a CUDA device; otherwise a warning says why it runs eagerly)")
    s.add_argument("--precision", choices=PRECISIONS, default="32",
                   help="32 (default) or bf16 (autocast; states and delay buffers stay fp32)")
    return s


def run(args) -> int:
    import torch

    from ..stimuli import builtin_image, load_image
    from ..util.files import RunFolder, check_replaceable

    from ..runtime.execution import Execution
    from ..util.device import resolve_device

    device = resolve_device(args.device)  # before anything is built: a missing GPU is a usage error
    path, source = read_spec(args.file)
    model = trained_model(args, path, source, args.partial_weights)
    model.require("dynv run", readouts=False)  # one stimulus image; several readouts are each printed
    model.eval().to(device)
    if args.cuda_graphs or args.precision != "32":
        model.execution = Execution(cuda_graphs=args.cuda_graphs, precision=args.precision)
    out = Path(args.out or f"runs/{path.stem}")
    targets = [out / name for name in OUTPUTS]
    with RunFolder(out, "dynv run", OUTPUTS) as folder:  # before simulating: the folder is writable and ours
        for note in folder.notes:
            print(note, file=sys.stderr)
        clash = [str(t) for t in targets if os.path.lexists(t)]
        if clash and not args.force:
            print(f"dynv: {', '.join(clash)} exist; pass --force to replace them or choose --out", file=sys.stderr)
            return 1
        for target in targets:
            check_replaceable(target, overwrite=True)
        c, h, w = model.input_shape
        image = load_image(args.image, c, h, w) if args.image else builtin_image(c, h, w)
        with torch.no_grad():
            result = on_cpu(noted(lambda: model.run(image.unsqueeze(0).to(device), seed=args.seed)))
        print_table(model, result)
        write_outputs(args, path, model, result, targets)
    print(f"wrote {targets[0]} and {targets[1]} ({targets[2].name}: where they came from)")
    return 0


def noted(run):
    """`run()`, a --cuda-graphs fallback's RuntimeWarning printed as one `note:` line."""
    def line(message):
        text = str(message)
        return f"note: --cuda-graphs: {text.partition(': ')[2]}" if text.startswith("cuda_graphs:") else None
    return warnings_printed(run, RuntimeWarning, line)


def on_cpu(result):
    """The run's tensors on the CPU (responses.pt then loads anywhere)."""
    def cpu(value):
        return {k: v.cpu() for k, v in value.items()} if isinstance(value, dict) else value.cpu()
    result.logits, result.responses, result.present = cpu(result.logits), cpu(result.responses), cpu(result.present)
    return result


def write_outputs(args, path: Path, model, result, targets: list[Path]) -> None:
    """responses.pt, responses.png and responses.json (all three or none); each names the spec,
    the --set values, the stimulus and the weights."""
    import json

    import torch

    from ..plot import plot_responses
    from ..util.files import atomic_targets
    from ..util.provenance import BUILTIN_STIMULUS, describe, metadata

    given = dict(params(args))  # a plain dict: responses.pt loads with weights_only=True
    stimulus = args.image or BUILTIN_STIMULUS
    meta = metadata("dynv run", path, given, stimulus=stimulus, weights=args.weights, seed=args.seed,
                    command_line=getattr(args, "command_line", None))
    title = f"{model.program.model.name} ({path.name})\n{describe(given, stimulus, args.weights, args.seed)}"
    pt_path, png_path, info_path = targets
    with atomic_targets([pt_path, info_path], overwrite=args.force) as (pt, info):
        torch.save({"logits": result.logits, "responses": result.responses, "present": result.present,
                    "dt": model.dt, "spec": str(path), "params": given, "stimulus": stimulus,
                    "weights": args.weights, "provenance": meta}, pt)
        Path(info).write_text(json.dumps(meta, indent=2) + "\n")
        # last, itself atomic: if it fails, the two temporaries above are removed too
        plot_responses(result, png_path, dt=model.dt, idle=model.idle, title=title)


def print_table(model, result) -> None:
    rows = [("area", "shape", "first present", "mean |r|")]
    for area in model.areas:
        present = result.present[area]
        first = int(present.nonzero()[0]) if present.any() else None
        resp = result.responses[area][:, present] if present.any() else None
        mean = f"{resp.abs().mean().item():.4g}" if resp is not None else "-"
        when = f"step {first} ({first * model.dt:g} ms)" if first is not None else "silent"
        rows.append((area, "[" + ", ".join(map(str, model.area_shapes[area])) + "]", when, mean))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print("  ".join(col.ljust(widths[j]) for j, col in enumerate(r)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    heads = result.logits if isinstance(result.logits, dict) else {"": result.logits}
    for name, values in heads.items():
        logits = values[0, -1]
        which = f"readout {name}" if name else "readout"
        print(f"{which} at the last step: class {int(logits.argmax())} (logit {logits.max().item():.4g})")
