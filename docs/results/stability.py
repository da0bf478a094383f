"""Why a trained DyRCNNx4 grows without bound, and whether a fix keeps it bounded: the numbers
of docs/results/stability.md.

    python docs/results/stability.py runs/x4-digits/best.pt [--steps 100] [--json out.json]

Three measurements on the checkpoint's weights, with the spec compiled at `--steps` steps
(10x the 10 it was trained on by default) and 32 held-out digits:

1. growth: mean |r| per area over time for a digit shown for the training length (10 steps)
   and then a blank screen, for a blank screen only, and for a digit shown throughout;
2. spectra: per area, the linear loop r(t) = (1 - a) r(t-1) + a (K r(t-d) + drive) with
   a = dt/tau and d the recurrence delay in steps. K, the lateral conv, is diagonalised by the
   2-D Fourier transform on the area's grid: per spatial frequency a C x C matrix. For each
   eigenvalue lambda of those matrices the loop's growth per step is the largest root |z| of
   z^d - (1 - a) z^(d-1) - a lambda = 0; rho is the largest, at all frequencies and at the
   uniform (DC) pattern that positive rectified activity excites most;
3. lesions: the same growth run with one connection's weights scaled to zero (each lateral
   recurrence, each skip), naming the connection that drives the growth.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dynvision_dsl import checkpoint as ckpt_mod  # noqa: E402
from dynvision_dsl.data import load as load_data, split  # noqa: E402
from dynvision_dsl.pipeline import compile as compile_spec  # noqa: E402

SPEC = ROOT / "specs" / "dyrcnn_x4.dyn"
MARKS = (10, 20, 30, 50, 100, 200, 500, 1000)


def model_for(checkpoint: Path, steps: int, spec: Path = SPEC, bound: float = 0.0):
    """The checkpoint's model compiled for `steps` steps, with its weights. With `bound`, an unbounded
    checkpoint's lateral weights go into a model with recurrence_gain=bound (projected onto the bound)."""
    ckpt = ckpt_mod.load(checkpoint)
    params = {**ckpt.params, "steps": str(steps), **({"recurrence_gain": str(bound)} if bound else {})}
    text = spec.read_text() if bound or not ckpt.spec else ckpt.spec  # an old checkpoint's spec may lack the param
    model = compile_spec(text, params, file=str(spec))
    state = dict(ckpt.model)
    if bound:
        for key in [k for k in state if k.endswith(".recurrence.conv.weight")]:
            state[key.replace(".conv.weight", ".conv.parametrizations.weight.original")] = state.pop(key)
        state.update({k: v for k, v in model.state_dict().items() if k.endswith(".weight.0.u")})
    model.load_state_dict(state, strict=True)
    if bound:
        _converge(model)
    return model.eval(), ckpt


def _converge(model, iters: int = 300) -> None:
    """Run every GainBound's power iteration to convergence on the weights now loaded."""
    from torch.nn.utils import parametrize

    with torch.no_grad():
        for module in model.modules():
            if not parametrize.is_parametrized(module, "weight"):
                continue
            chain = module.parametrizations.weight
            for bound in chain:
                # the model's GainBound is the generated module's copy of the class: ask by name
                if type(bound).__name__ == "GainBound" and bound.u is not None:
                    for _ in range(iters):
                        bound._iterate(chain.original)


def accuracy(checkpoint: Path, bound: float = 0.0) -> float:
    """Held-out accuracy at the last of the trained steps (all 359 held-out digits)."""
    ckpt = ckpt_mod.load(checkpoint)
    model, _ = model_for(checkpoint, int(ckpt.params.get("steps", 10)), bound=bound)
    data = load_data("digits", tuple(model.input_shape))
    test = split(data, 0.2, 0)[1]
    hits = 0
    with torch.no_grad():
        for i in range(0, len(test.images), 64):
            x = test.images[i:i + 64][:, None].expand(-1, model.steps, -1, -1, -1)
            hits += int((model(x)[:, -1].argmax(-1) == test.labels[i:i + 64]).sum())
    return hits / len(test.images)


def digits(model, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_data("digits", tuple(model.input_shape))
    test = split(data, 0.2, 0)[1]
    return test.images[:n], test.labels[:n]


def courses(model, images: torch.Tensor, on: int | None) -> dict[str, np.ndarray]:
    """Mean |r| per area and step for the images shown for `on` steps (None: throughout; 0: blank)."""
    T = model.steps
    x = images[:, None].expand(-1, T, -1, -1, -1).clone()
    if on is not None:
        x[:, on:] = 0
    with torch.no_grad():
        _, raw = model.simulate(x, record=list(model.areas))
    return {a: np.array([0.0 if v is None else float(v.abs().mean()) for v in raw[a]]) for a in model.areas}


def loop_roots(lam: np.ndarray, a: float, d: int) -> np.ndarray:
    """Largest |z| of z^d - (1-a) z^(d-1) - a lam = 0 for each eigenvalue lam."""
    out = np.empty(lam.shape)
    for i, value in enumerate(lam.ravel()):
        coeffs = np.zeros(d + 1, dtype=complex)
        coeffs[0] = 1
        coeffs[1] -= 1 - a
        coeffs[-1] -= a * value
        out.flat[i] = np.abs(np.roots(coeffs)).max()
    return out


def spectra(model) -> dict[str, dict[str, float]]:
    """Per area: the lateral conv's spectral radius and norm (all frequencies and DC) and the loop's rho."""
    out = {}
    for area in model.areas:
        conv = getattr(getattr(model, area, None), "recurrence", None)
        if conv is None or not hasattr(conv, "conv"):
            continue
        K = conv.conv.weight.detach().double()  # (C, C, k, k), as the loop uses it (after any GainBound)
        C, _, H, W = (K.shape[0], K.shape[1]) + tuple(model.area_shapes[area][1:])
        pad = torch.zeros(C, C, H, W, dtype=torch.float64)
        k = K.shape[-1]
        for i in range(k):
            for j in range(k):
                pad[:, :, (i - k // 2) % H, (j - k // 2) % W] += K[:, :, i, j]
        F = torch.fft.fft2(pad).permute(2, 3, 0, 1)  # (H, W, C, C): K at each spatial frequency
        eig = torch.linalg.eigvals(F).numpy()  # (H, W, C)
        norm = torch.linalg.matrix_norm(F, ord=2).numpy()
        a, d = _leak_and_delay(model)
        rho = loop_roots(eig, a, d)
        out[area] = {"radius": float(np.abs(eig).max()), "radius_dc": float(np.abs(eig[0, 0]).max()),
                     "norm": float(norm.max()), "norm_dc": float(norm[0, 0]),
                     "dc_top_real": float(eig[0, 0].real.max()),
                     "rho": float(rho.max()), "rho_dc": float(rho[0, 0].max()), "a": a, "delay": d}
    return out


def _leak_and_delay(model) -> tuple[float, int]:
    """a = dt/tau and the lateral delay in steps, d = max(1, round(t_recurrence/dt)), from the params (ms)."""
    p = model.program.model.params
    return p["dt"] / p["tau"], max(1, round(p["t_recurrence"] / p["dt"]))


def active_gains(model, images: torch.Tensor, on: int, at_steps, iters: int = 200) -> dict:
    """Per area and step: the dominant eigenvalue of the lateral loop restricted to the units that are
    active (r > 0) at that step, mask * K (ReLU passes exactly those), and the loop's growth per step."""
    T = model.steps
    x = images[:, None].expand(-1, T, -1, -1, -1).clone()
    x[:, on:] = 0
    with torch.no_grad():
        _, raw = model.simulate(x, record=list(model.areas))
    a, d = _leak_and_delay(model)
    out: dict = {}
    for area in model.areas:
        conv = getattr(model, area).recurrence.conv
        for t in at_steps:
            state = raw[area][t - 1]
            if state is None:
                continue
            mask = (state > 0).to(state.dtype)
            lam = _masked_eigenvalue(lambda v: mask * F.conv2d(v, conv.weight, padding=conv.padding), mask, iters)
            out.setdefault(area, {})[t] = {"active": float(mask.mean()), "lambda": lam,
                                           "rho": float(loop_roots(np.array([lam]), a, d)[0])}
    return out


def _masked_eigenvalue(apply, mask: torch.Tensor, iters: int) -> float:
    """The dominant eigenvalue (its real part) of a linear map on the masked units, by power iteration
    (per image; the largest over the images)."""
    v = mask * torch.rand_like(mask)
    lam = torch.zeros(mask.shape[0])
    with torch.no_grad():
        for _ in range(iters):
            w = apply(v)
            norm = w.flatten(1).norm(dim=1).clamp_min(1e-30)
            lam = (w * v).flatten(1).sum(1) / v.flatten(1).pow(2).sum(1).clamp_min(1e-30)
            v = w / norm.view(-1, 1, 1, 1)
    return float(lam.max())


def lesion(model, name: str):
    """Zero every tensor under `name` (a connection's `as` name) in place; return the saved copies."""
    saved = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(name + ".")}
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if k in saved:
                v.zero_()
    return saved


def restore(model, saved) -> None:
    with torch.no_grad():
        state = model.state_dict()
        for k, v in saved.items():
            state[k].copy_(v)


def at(course: np.ndarray, marks=MARKS) -> dict[int, float]:
    return {m: float(course[m - 1]) for m in marks if m <= len(course)}


def growth_rate(course: np.ndarray, lo: int, hi: int) -> float:
    """Mean factor per step of the response between steps lo and hi (1 = flat)."""
    hi = min(hi, len(course))
    a, b = course[lo - 1], course[hi - 1]
    return float((b / a) ** (1 / (hi - lo))) if a > 0 and b > 0 else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--json")
    p.add_argument("--bound", type=float, default=0.0,
                   help="put an unbounded checkpoint's lateral weights under recurrence_gain=BOUND")
    p.add_argument("--accuracy", action="store_true", help="also the held-out accuracy at the trained length")
    p.add_argument("--images", type=int, default=16, help="held-out digits to average over (default 16)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    model, ckpt = model_for(Path(args.checkpoint), args.steps, bound=args.bound)
    images, _ = digits(model, args.images)
    report: dict = {"checkpoint": args.checkpoint, "steps": args.steps, "params": ckpt.params, "bound": args.bound}
    if args.accuracy:
        report["accuracy"] = accuracy(Path(args.checkpoint), args.bound)
        print(f"... held-out accuracy {report['accuracy']:.3f}", file=sys.stderr, flush=True)
    runs = {"digit_10_then_blank": 10, "blank": 0, "digit_throughout": None}
    report["growth"] = {}
    for label, on in runs.items():
        print(f"... {label}", file=sys.stderr, flush=True)
        c = courses(model, images, on)
        report["growth"][label] = {a: {"at": at(v), "max": float(v.max()), "argmax": int(v.argmax()) + 1,
                                       "rate_late": growth_rate(v, args.steps // 2, args.steps)}
                                   for a, v in c.items()}
    report["spectra"] = spectra(model)
    marks = [m for m in (10, 30, 50, args.steps) if m <= args.steps]
    report["active"] = active_gains(model, images[:8], 10, sorted(set(marks)))
    names = [f"{a}.recurrence" for a in model.areas] + ["addskip_V4", "addskip_IT"]
    report["lesions"] = {}
    for name in names:
        print(f"... lesion {name}", file=sys.stderr, flush=True)
        saved = lesion(model, name)
        if not saved:
            continue
        c = courses(model, images, 10)
        report["lesions"][name] = {a: {"end": float(v[-1]), "max": float(v.max())} for a, v in c.items()}
        restore(model, saved)
    text = json.dumps(report, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print_report(report)
    return 0


def print_report(r: dict) -> None:
    print(f"# {r['checkpoint']} at {r['steps']} steps" + (f", lateral gains bounded at {r['bound']}" if r["bound"] else "")
          + (f"; held-out accuracy {100 * r['accuracy']:.1f}%" if "accuracy" in r else ""))
    for label, areas in r["growth"].items():
        print(f"\n## growth: {label} (mean |r| at step)")
        marks = [m for m in MARKS if m <= r["steps"]]
        print("| area | " + " | ".join(str(m) for m in marks) + " | max (step) | factor/step, 2nd half |")
        for a, g in areas.items():
            print(f"| {a} | " + " | ".join(f"{g['at'][m]:.3g}" for m in marks) +
                  f" | {g['max']:.3g} ({g['argmax']}) | {g['rate_late']:.4f} |")
    print("\n## spectra of the lateral loops")
    print("| area | radius K (all / DC) | norm K (all / DC) | top real eig DC | loop rho (all / DC) |")
    for a, s in r["spectra"].items():
        print(f"| {a} | {s['radius']:.3f} / {s['radius_dc']:.3f} | {s['norm']:.3f} / {s['norm_dc']:.3f} | "
              f"{s['dc_top_real']:.3f} | {s['rho']:.4f} / {s['rho_dc']:.4f} |")
    print("\n## the lateral loop on the active units (digit for 10 steps, then blank): lambda, growth/step")
    for a, steps in r.get("active", {}).items():
        print(f"| {a} | " + " | ".join(f"step {t}: {g['active']:.0%} active, lambda {g['lambda']:.3f}, "
                                       f"rho {g['rho']:.4f}" for t, g in steps.items()) + " |")
    print("\n## lesions (digit for 10 steps then blank): response at the last step (max)")
    areas = list(next(iter(r["lesions"].values())).keys()) if r["lesions"] else []
    print("| lesioned | " + " | ".join(areas) + " |")
    for name, res in r["lesions"].items():
        print(f"| {name} | " + " | ".join(f"{res[a]['end']:.3g} ({res[a]['max']:.3g})" for a in areas) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
