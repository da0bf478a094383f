"""Generate the project's compact reference-parity fixtures (tests/fixtures/*.pt).

Run with the reference venv (see setup_reference.sh):

    .venv-reference/bin/python benchmarks/reference/make_fixtures.py            # all
    .venv-reference/bin/python benchmarks/reference/make_fixtures.py x4_ x8_    # names starting so

For each variant: build the DynVision 0.1.0 model, run one forward (so lazy
skip/feedback adapters exist), re-draw every float parameter with
``tests/fixture_weights.draw`` (tau, ``n_residual_timesteps``, supralinearity
and the `local` index buffers stay as built), run the seeded input from
``make_input`` and save a file that holds no weights and no input:

    model, kwargs, dsl_params, seed, input_shape (B, T, C, H, W),
    shapes   {drawn key: shape}   (alias keys such as ``addskip_V4.source.*``
                                   are left out; they share the drawn tensor)
    scalars  {key: float or int}  (every 0-d entry: tau_*, tstep_*.tau,
                                   supralin.*, n_residual_timesteps)
    output   float32 logits (B, T, 10)

``tests/test_zoo_parity.py`` rebuilds the state dict from ``shapes`` + ``seed``
+ ``scalars`` and compares a compiled spec against ``output``. Variants avoid
the reference defects of NOTES.md §1/§6 (skip with tff >= dt, deliveries
deeper than the history ring, non-square `local`, sizes not a multiple of 32
for CorNetRT/CordsNet).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import run_reference as R  # noqa: E402  (imports dynvision; needs the reference venv)

_spec = importlib.util.spec_from_file_location("fixture_weights", ROOT / "tests" / "fixture_weights.py")
FW = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(FW)

OUT = ROOT / "tests" / "fixtures"
BATCH = 2
CLASSES = 10

# name, model, size, steps, constructor kwargs, the .dyn params of the same variant
VARIANTS = [
    # DyRCNNx4: every recurrence kind, then one change at a time from the defaults
    ("x4_full", "DyRCNNx4", 32, 8, {}, {}),
    ("x4_self", "DyRCNNx4", 32, 8, {"recurrence_type": "self"}, {"recurrence": "self"}),
    ("x4_depthpointwise", "DyRCNNx4", 32, 8, {"recurrence_type": "depthpointwise"}, {"recurrence": "depthpointwise"}),
    ("x4_pointdepthwise", "DyRCNNx4", 32, 8, {"recurrence_type": "pointdepthwise"}, {"recurrence": "pointdepthwise"}),
    ("x4_local", "DyRCNNx4", 32, 8, {"recurrence_type": "local"}, {"recurrence": "local"}),
    ("x4_localdepthwise", "DyRCNNx4", 32, 8, {"recurrence_type": "localdepthwise"}, {"recurrence": "localdepthwise"}),
    ("x4_none", "DyRCNNx4", 32, 8, {"recurrence_type": "none"}, {"recurrence": "none"}),
    ("x4_fbadd", "DyRCNNx4", 32, 10, {"feedback": "add", "t_feedback": 4.0},
     {"feedback": "add", "t_feedback": "4 ms"}),
    ("x4_fbmul", "DyRCNNx4", 32, 10, {"feedback": "mul", "t_feedback": 4.0},
     {"feedback": "mul", "t_feedback": "4 ms"}),
    ("x4_tau8", "DyRCNNx4", 32, 8, {"tau": 8.0}, {"tau": "8 ms"}),
    # skip with tff >= dt crashes the reference (NOTES §6), so tff 2 runs without skip
    ("x4_tff2_noskip", "DyRCNNx4", 32, 12, {"t_feedforward": 2.0, "skip": False},
     {"t_feedforward": "2 ms", "skip": False}),
    ("x4_trc4", "DyRCNNx4", 32, 8, {"t_recurrence": 4.0}, {"t_recurrence": "4 ms"}),
    ("x4_supralin", "DyRCNNx4", 32, 8, {"supralinearity": 1.5}, {"supralinearity": 1.5}),
    ("x4_noskip", "DyRCNNx4", 32, 8, {"skip": False}, {"skip": False}),
    ("x4_size24", "DyRCNNx4", 24, 8, {}, {}),
    # DyRCNNx2
    ("x2_full", "DyRCNNx2", 32, 8, {}, {}),
    ("x2_dpw_fbmul", "DyRCNNx2", 32, 10,
     {"recurrence_type": "depthpointwise", "feedback": "mul", "t_feedback": 4.0},
     {"recurrence": "depthpointwise", "feedback": "mul", "t_feedback": "4 ms"}),
    ("x2_self_tau9_supralin", "DyRCNNx2", 24, 8,
     {"recurrence_type": "self", "tau": 9.0, "supralinearity": 1.5},
     {"recurrence": "self", "tau": "9 ms", "supralinearity": 1.5}),
    # DyRCNNx8: each recurrence target with two kinds (local kinds cannot target `input`)
    ("x8_output_full", "DyRCNNx8", 32, 6, {}, {}),
    ("x8_output_local", "DyRCNNx8", 32, 6, {"recurrence_type": "local"}, {"recurrence": "local"}),
    ("x8_middle_full", "DyRCNNx8", 32, 6, {"recurrence_target": "middle"}, {"recurrence_target": "middle"}),
    ("x8_middle_localdepthwise", "DyRCNNx8", 32, 6,
     {"recurrence_target": "middle", "recurrence_type": "localdepthwise"},
     {"recurrence_target": "middle", "recurrence": "localdepthwise"}),
    ("x8_input_full", "DyRCNNx8", 32, 6, {"recurrence_target": "input"}, {"recurrence_target": "input"}),
    ("x8_input_pointdepthwise_fbadd", "DyRCNNx8", 32, 8,
     {"recurrence_target": "input", "recurrence_type": "pointdepthwise", "feedback": "add", "t_feedback": 4.0},
     {"recurrence_target": "input", "recurrence": "pointdepthwise", "feedback": "add", "t_feedback": "4 ms"}),
    # CorNetRT (init_with_pretrained=False is added by run_reference.build)
    ("cornet_rt_default", "CorNetRT", 32, 6, {}, {}),
    ("cornet_rt_trc4", "CorNetRT", 32, 6, {"t_recurrence": 4.0}, {"t_recurrence": "4 ms"}),
    ("cornet_rt_tff0", "CorNetRT", 32, 6, {"t_feedforward": 0.0}, {"t_feedforward": "0 ms"}),
    # tff >= 2 dt repeats the rest-state injection and re-zeroes stored outputs
    # (a NOTES.md §3/§6 quirk); not a parity target
    ("cornet_rt_trc6", "CorNetRT", 32, 6, {"t_recurrence": 6.0}, {"t_recurrence": "6 ms"}),
    # CordsNet
    ("cordsnet_default", "CordsNet", 32, 6, {}, {}),
    ("cordsnet_idle0", "CordsNet", 32, 6, {"idle_timesteps": 0}, {"idle_steps": 0}),
    ("cordsnet_idle3", "CordsNet", 32, 6, {"idle_timesteps": 3}, {"idle_steps": 3}),
    ("cordsnet_idle3_trc4_tff4", "CordsNet", 32, 8,
     {"idle_timesteps": 3, "t_recurrence": 4.0, "t_feedforward": 4.0},
     {"idle_steps": 3, "t_recurrence": "4 ms", "t_feedforward": "4 ms"}),
    ("cordsnet_idle3_noskip", "CordsNet", 32, 6, {"idle_timesteps": 3, "skip": False},
     {"idle_steps": 3, "skip": False}),
]


def canonical_keys(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Distinct float tensors (>= 1 dim) of the state dict, each under one key:
    the first that is not an alias (``*.source.*``)."""
    groups: dict[int, list[str]] = {}
    tensors = {}
    for key, t in m.state_dict(keep_vars=True).items():
        if not t.is_floating_point() or t.dim() == 0:
            continue
        groups.setdefault(t.data_ptr(), []).append(key)
        tensors[key] = t
    out = {}
    for keys in groups.values():
        plain = [k for k in keys if ".source." not in k]
        key = (plain or keys)[0]
        out[key] = tensors[key]
    return out


def make(index: int, name, model, size, steps, kwargs, dsl_params) -> Path:
    seed = 1000 + index
    input_dims = (steps, 3, size, size)
    torch.manual_seed(seed)
    m = R.build(model, input_dims, CLASSES, kwargs)
    R.warm_up(m, input_dims)
    params = canonical_keys(m)
    shapes = {k: tuple(t.shape) for k, t in params.items()}
    drawn = FW.draw(shapes, seed)
    with torch.no_grad():
        for k, t in params.items():
            t.copy_(drawn[k])
    scalars = {}
    for k, t in m.state_dict().items():
        if t.dim() == 0:
            scalars[k] = t.item()
    x = FW.make_input((BATCH, *input_dims), seed)
    with torch.no_grad():
        y = m(x).float()
        y2 = m(x).float()
    assert torch.equal(y, y2), name
    if model in R.PRETRAINED_DEFAULT:
        kwargs = {"init_with_pretrained": False, **kwargs}
    fixture = {
        "reference": R.dynvision_version(),
        "model": model,
        "kwargs": kwargs,
        "dsl_params": dsl_params,
        "seed": seed,
        "input_shape": (BATCH, *input_dims),
        "shapes": shapes,
        "scalars": scalars,
        "output": y.clone(),
    }
    path = OUT / f"{name}.pt"
    torch.save(fixture, path)
    zero_steps = [t for t in range(y.shape[1]) if not y[:, t].abs().sum()]
    print(f"{path.name:36s} {model:9s} {tuple(x.shape)} keys {len(shapes):3d} "
          f"|out|max {y.abs().max():.3g} std {y.std():.3g} zero steps {zero_steps} "
          f"{path.stat().st_size / 1024:.1f} KB", flush=True)
    return path


def main(argv: list[str]) -> int:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    OUT.mkdir(parents=True, exist_ok=True)
    names = {v[0] for v in VARIANTS}
    assert len(names) == len(VARIANTS), "duplicate variant names"
    for i, v in enumerate(VARIANTS):
        if argv and not any(v[0].startswith(p) for p in argv):
            continue
        make(i, *v)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
