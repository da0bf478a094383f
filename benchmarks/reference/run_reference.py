"""Run a DynVision 0.1.0 reference model and save a parity fixture.

Run it with the reference venv's python (see setup_reference.sh):

    V=.venv-reference/bin/python
    # make a fixture: DyRCNNx4, full recurrence, 10 steps of 32x32, batch 2
    $V benchmarks/reference/run_reference.py make DyRCNNx4 /tmp/x4.pt \
        --kwargs '{"recurrence_type": "full"}' --seed 0 --size 32 --steps 10 --batch 2
    # CordsNet with 4 idle steps (init_with_pretrained=False is added for
    # CorNetRT/CordsNet unless given: their default downloads weights)
    $V benchmarks/reference/run_reference.py make CordsNet /tmp/c.pt \
        --kwargs '{"idle_timesteps": 4}' --size 64 --steps 8
    # replay a fixture (shared or made here) and compare its output
    $V benchmarks/reference/run_reference.py replay /work/shared/fixtures/dynvision/x4_full.pt

The saved file has the layout of shared/fixtures/dynvision (see its README):
``{"state_dict", "input", "output", "responses", "meta"}``; float tensors of
the state dict are stored as float16 when that is exact (all re-drawn weights
are), else as float32 (e.g. a tau or supralinearity exponent that float16
cannot hold).

Calling convention of the reference (what this script does, and what a
re-implementation must match):

* Construction: ``cls(input_dims=(T, C, H, W), n_classes=N, **kwargs)``.
  ``input_dims`` fixes the spatial size for good: recurrence upsamplers,
  the `local` channel->sheet index buffers, CordsNet's spatial biases and
  CorNetRT's zero states are all built for that H, W. ``T`` only sets
  ``n_timesteps``; any number of steps can be run later. CorNetRT and
  CordsNet default to ``init_with_pretrained=True`` (a network download);
  pass ``init_with_pretrained=False``.
* Lazy adapters: skip/feedback 1x1 convs (``addskip_*.conv``,
  ``addfeedback_*.conv``, DyRCNN only) are created inside the first forward
  step at which both the target's drive and the delayed source exist, with a
  nearest-resize to the size seen then. So: build, run one forward of at
  least the same number of steps at the same H, W, and only then load or
  re-draw weights. A feedback adapter whose delay exceeds the steps run is
  never created and never matters.
* Forward: ``model(x)`` with ``x`` float32 of shape (B, T, C, H, W) on CPU
  returns logits (B, T, n_classes), one per input step; step t sees only
  ``x[:, t]``. ``idle_timesteps`` (CordsNet, or any model given the kwarg)
  extra steps with an all-``non_input_value`` (0.0) frame are run first,
  inside the same call, and produce no output. Residual steps
  (``n_residual_timesteps``, a buffer computed at construction) are NOT
  appended by ``forward``; only the Lightning training path does that.
  A step at which the classifier has no input gives an all-zero row.
* Reset: every ``forward`` call begins with ``model.reset()`` (all hidden
  state buffers and Euler states emptied), so calls are independent; only
  the lazily created adapters persist between calls.
* dtype/device: everything float32 on CPU; no autocast takes effect on CPU
  (the `localdepthwise` and SupraLinearity autocast is CUDA-only).
* Loading: the model's own ``load_state_dict`` silently adds missing and
  drops unexpected keys; this script uses ``torch.nn.Module.load_state_dict``
  with strict=True instead, so a key mismatch is an error. Alias keys
  (``addskip_V4.source.*`` = ``V1.*`` etc.) are the same tensors.

Weight re-draw (``make``), deterministic from ``--seed`` via one
``torch.Generator`` walking the state dict in order, each distinct tensor
once (aliases share storage):
  * ndim >= 2 (conv/linear weights, weight-norm g and v, spatial biases):
    N(0, 1) * scale / sqrt(numel / shape[0])
  * 1-D GroupNorm weight: 1 + 0.1 * scale * N(0, 1); other 1-D of length > 1
    (biases, GroupNorm bias): 0.1 * scale * N(0, 1)
  * shape (1,) (self-recurrence weight/bias): U(0.25, 0.75)
  * 0-d tensors (tau_*, tstep_*.tau, supralin.n/k) and integer buffers
    (n_residual_timesteps, local mapping indices) are left as built.
  Every drawn value is rounded through float16 (``.half().float()``).
Input: N(0, 1) of shape (B, T, C, H, W) from the same seed (its own
generator, seed + 1).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import warnings
from typing import Any

import torch

logging.disable(logging.WARNING)
warnings.filterwarnings("ignore")

import dynvision  # noqa: E402
import dynvision.models as M  # noqa: E402

MODELS = ("DyRCNNx2", "DyRCNNx4", "DyRCNNx8", "CorNetRT", "CordsNet")
PRETRAINED_DEFAULT = ("CorNetRT", "CordsNet")


def dynvision_version() -> str:
    from importlib.metadata import version

    return f"dynvision {version('dynvision')}"


def build(model: str, input_dims, n_classes: int, kwargs: dict[str, Any]) -> torch.nn.Module:
    if model not in MODELS:
        raise SystemExit(f"unknown model {model!r}; one of {MODELS}")
    kwargs = dict(kwargs)
    if model in PRETRAINED_DEFAULT:
        kwargs.setdefault("init_with_pretrained", False)
    m = getattr(M, model)(input_dims=tuple(input_dims), n_classes=n_classes, **kwargs)
    return m.float().eval()


def warm_up(m: torch.nn.Module, input_dims, extra_steps: int | None = None) -> None:
    """One forward (batch 1) so that lazily created adapters exist.

    Only models with auto-adapting skip/feedback connections (the DyRCNNs)
    need it; CorNetRT and CordsNet build everything in the constructor.
    """
    if not any(getattr(mod, "auto_adapt", False) for mod in m.modules()):
        return
    T, C, H, W = input_dims
    if extra_steps is None:
        hist = float(getattr(m, "history_length", 0.0))
        extra_steps = int(math.ceil(hist / float(m.dt))) + 2
    g = torch.Generator().manual_seed(12345)
    x = torch.randn(1, T + extra_steps, C, H, W, generator=g)
    with torch.no_grad():
        m(x)


def redraw(m: torch.nn.Module, seed: int, scale: float = 1.0) -> list[str]:
    """Re-draw all float weights in place, deterministically. Returns keys drawn."""
    g = torch.Generator().manual_seed(seed)
    gn_weights = set()
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.GroupNorm) and mod.weight is not None:
            gn_weights.add(id(mod.weight))
    seen: set[int] = set()
    drawn = []
    with torch.no_grad():
        for key, t in m.state_dict(keep_vars=True).items():
            if not t.is_floating_point() or t.dim() == 0:
                continue
            ident = t.data_ptr()
            if ident in seen:
                continue
            seen.add(ident)
            shape = tuple(t.shape)
            if t.dim() >= 2:
                fan_in = t.numel() // shape[0]
                v = torch.randn(shape, generator=g) * (scale / math.sqrt(fan_in))
            elif shape == (1,):
                v = 0.25 + 0.5 * torch.rand(shape, generator=g)
            elif id(t) in gn_weights:
                v = 1.0 + 0.1 * scale * torch.randn(shape, generator=g)
            else:
                v = 0.1 * scale * torch.randn(shape, generator=g)
            t.copy_(v.half().float())
            drawn.append(key)
    return drawn


def run(m: torch.nn.Module, x: torch.Tensor):
    """Forward x (B,T,C,H,W); returns (logits (B,T,N), responses of sample 0)."""
    responses: dict[str, dict[int, torch.Tensor]] = {}
    orig = m._forward
    step = {"t": 0}

    def wrapped(inp, t=None, feedforward_only=False, store_responses=True):
        idle = bool(getattr(m, "_in_idle_period", False))
        y, resp = orig(inp, t=t, feedforward_only=feedforward_only, store_responses=not idle)
        if not idle:
            for area, r in resp.items():
                if isinstance(r, torch.Tensor):
                    responses.setdefault(area, {})[step["t"]] = r[:1].detach().to(torch.float16).clone()
            step["t"] += 1
        return y, resp

    m._forward = wrapped
    try:
        with torch.no_grad():
            y = m(x)
    finally:
        del m._forward
    return y, responses


def compact_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        v = v.detach().clone()
        if v.is_floating_point():
            h = v.half()
            if torch.equal(h.float(), v.float()):
                v = h
        out[k] = v
    return out


def load_fixture_state(m: torch.nn.Module, sd: dict[str, torch.Tensor]) -> None:
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    torch.nn.Module.load_state_dict(m, sd, strict=True)


def cmd_make(a) -> int:
    kwargs = json.loads(a.kwargs)
    H = a.height or a.size
    W = a.width or a.size
    input_dims = [a.steps, a.channels, H, W]
    torch.manual_seed(a.seed)  # construction-time inits (irrelevant after re-draw)
    m = build(a.model, input_dims, a.n_classes, kwargs)
    warm_up(m, input_dims)
    keys_before = list(m.state_dict().keys())
    drawn = redraw(m, a.seed, a.scale)
    x = torch.randn(a.batch, *input_dims, generator=torch.Generator().manual_seed(a.seed + 1))
    y, responses = run(m, x)
    y2, _ = run(m, x)
    keys_after = list(m.state_dict().keys())
    if keys_after != keys_before:
        raise SystemExit(f"state dict changed during the run: {set(keys_after) ^ set(keys_before)}")
    if not torch.equal(y, y2):
        raise SystemExit("two forward calls differ: reset between calls failed")
    meta = {
        "reference": dynvision_version(),
        "model": a.model,
        "kwargs": kwargs,
        "input_dims": input_dims,
        "n_classes": a.n_classes,
        "batch": a.batch,
        "dsl_params": json.loads(a.dsl_params),
        "torch": torch.__version__,
        "output_absmax": y.abs().max().item(),
        "output_std": y.std().item(),
        "seed": a.seed,
        "weight_scale": a.scale,
        "generator": "benchmarks/reference/run_reference.py",
    }
    if a.model in PRETRAINED_DEFAULT and "init_with_pretrained" not in kwargs:
        meta["kwargs"] = {"init_with_pretrained": False, **kwargs}
    torch.save(
        {"state_dict": compact_state_dict(m.state_dict()), "input": x, "output": y.float(),
         "responses": responses, "meta": meta},
        a.out,
    )
    print(f"wrote {a.out}: {a.model} kwargs={meta['kwargs']} input {tuple(x.shape)} -> output {tuple(y.shape)}; "
          f"{len(keys_after)} state keys ({len(drawn)} distinct float tensors re-drawn); "
          f"|out|max={meta['output_absmax']:.4g} std={meta['output_std']:.4g}")
    return 0


def cmd_replay(a) -> int:
    worst = 0.0
    ok_all = True
    for path in a.fixtures:
        fx = torch.load(path, weights_only=False)
        meta = fx["meta"]
        m = build(meta["model"], meta["input_dims"], meta["n_classes"], meta["kwargs"])
        warm_up(m, meta["input_dims"])
        load_fixture_state(m, fx["state_dict"])
        y, responses = run(m, fx["input"])
        err = (y - fx["output"]).abs().max().item()
        ok = torch.allclose(y, fx["output"], atol=a.atol, rtol=0.0) and y.shape == fx["output"].shape
        rerr = 0.0
        rmismatch = []
        for area, steps in fx.get("responses", {}).items():
            mine = responses.get(area, {})
            if sorted(mine) != sorted(steps):
                rmismatch.append(area)
                continue
            for t, r in steps.items():
                rerr = max(rerr, (mine[t].float() - r.float()).abs().max().item())
        print(f"{path.split('/')[-1]:28s} {meta['model']:9s} out {tuple(y.shape)} max|diff| {err:.3g} "
              f"responses max|diff| {rerr:.3g} (fp16) step-sets-differ {rmismatch} -> {'OK' if ok and not rmismatch else 'MISMATCH'}")
        ok_all &= ok and not rmismatch
        worst = max(worst, err)
    print(f"worst output diff {worst:.3g} (atol {a.atol})")
    return 0 if ok_all else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="build, re-draw weights, run, save a fixture")
    mk.add_argument("model", choices=MODELS)
    mk.add_argument("out")
    mk.add_argument("--kwargs", default="{}", help="constructor kwargs as JSON")
    mk.add_argument("--dsl-params", default="{}", help="JSON stored as meta['dsl_params']")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--size", type=int, default=32, help="H = W (default 32)")
    mk.add_argument("--height", type=int, default=None)
    mk.add_argument("--width", type=int, default=None)
    mk.add_argument("--channels", type=int, default=3)
    mk.add_argument("--steps", type=int, default=10)
    mk.add_argument("--batch", type=int, default=2)
    mk.add_argument("--n-classes", type=int, default=10)
    mk.add_argument("--scale", type=float, default=1.0, help="weight scale (default 1.0)")
    rp = sub.add_parser("replay", help="load fixture(s), rerun the reference, compare")
    rp.add_argument("fixtures", nargs="+")
    rp.add_argument("--atol", type=float, default=1e-5)
    a = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return cmd_make(a) if a.cmd == "make" else cmd_replay(a)


if __name__ == "__main__":
    sys.exit(main())
