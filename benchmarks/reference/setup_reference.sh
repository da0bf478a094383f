#!/usr/bin/env bash
# Create (or refresh) the virtual environment that runs the DynVision 0.1.0
# reference models, for parity checks of dynvision-dsl.
#
#   bash benchmarks/reference/setup_reference.sh
#   DYNVISION_VENV=/some/where bash benchmarks/reference/setup_reference.sh
#
# What it does (idempotent: every step is skipped or a no-op when done):
#   1. python3 -m venv --system-site-packages "$DYNVISION_VENV"
#      (default: <repo>/.venv-reference). The venv reuses the torch and
#      torchvision already installed for the system python; torch is NEVER
#      installed into the venv.
#   2. pip install --no-deps dynvision==0.1.0 and only the packages its model
#      modules import at import time (found by trying): pytorch-lightning,
#      lightning-utilities, torchmetrics, tqdm, pandas, seaborn, psutil,
#      torchsummary. All with --no-deps, so nothing pulls torch again; their
#      own runtime deps (numpy, PyYAML, fsspec, packaging, typing_extensions,
#      python-dateutil, matplotlib, requests) come from the system
#      site-packages.
#   3. Writes a no-op stand-in package `wandb` into the venv's site-packages
#      (dynvision imports wandb at module level but never needs it to build
#      or run a model).
#   4. Checks that DyRCNNx2/x4/x8, CorNetRT and CordsNet construct.
#
# Environment: DYNVISION_VENV (venv path), PYTHON (base interpreter, default
# python3; it must already have torch and torchvision).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${DYNVISION_VENV:-$REPO/.venv-reference}"
PYTHON="${PYTHON:-python3}"

say() { printf '[setup_reference] %s\n' "$*"; }

# Pinned versions (the ones this was verified with).
PKGS=(
  "dynvision==0.1.0"
  "pytorch-lightning==2.6.6"
  "lightning-utilities==0.15.3"
  "torchmetrics==1.9.0"
  "tqdm==4.70.1"
  "pandas==3.1.1"
  "seaborn==0.13.2"
  "psutil==7.2.2"
  "torchsummary==1.5.1"
)

# 0. the base interpreter must provide torch.
if ! "$PYTHON" -c "import torch, torchvision" >/dev/null 2>&1; then
  say "ERROR: $PYTHON cannot import torch/torchvision; this script never installs torch." >&2
  exit 1
fi
say "base python: $("$PYTHON" -c 'import sys, torch, torchvision; print(sys.executable, "torch", torch.__version__, "torchvision", torchvision.__version__)')"

# 1. venv
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  say "venv exists: $VENV (kept)"
else
  say "creating venv (--system-site-packages): $VENV"
  "$PYTHON" -m venv --system-site-packages "$VENV"
fi
VPY="$VENV/bin/python"

# 2. packages (--no-deps everywhere; skip pip entirely when all pins are met)
missing=()
for spec in "${PKGS[@]}"; do
  name="${spec%%==*}"; want="${spec##*==}"
  have="$("$VPY" - "$name" <<'EOF' 2>/dev/null || true
import sys, importlib.metadata as md, sysconfig, pathlib
name = sys.argv[1]
# only count distributions installed inside the venv itself
purelib = pathlib.Path(sysconfig.get_paths()["purelib"]).resolve()
try:
    d = md.distribution(name)
    loc = pathlib.Path(str(d.locate_file(""))).resolve()
    print(d.version if loc == purelib else "")
except md.PackageNotFoundError:
    print("")
EOF
)"
  if [ "$have" = "$want" ]; then
    say "already installed: $spec"
  else
    missing+=("$spec")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "pip install --no-deps ${missing[*]}"
  "$VPY" -m pip install --quiet --no-deps "${missing[@]}" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
else
  say "all pinned packages present; pip not run"
fi

# 3. wandb stand-in
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
STUB_DIR="$SITE/wandb"
STUB_SRC='"""No-op stand-in for wandb, written by benchmarks/reference/setup_reference.sh.

DynVision 0.1.0 imports wandb at module level but does not need it to build or
run models. Every attribute is a no-op object: callable, attribute access
returns another no-op, falsy, empty when iterated, usable as a context
manager.
"""
__version__ = "0.0.0+dynvision-dsl-noop"


class _NoOp:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _NoOp()

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _NoOp()

    def __bool__(self):
        return False

    def __iter__(self):
        return iter(())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return "<wandb no-op>"


run = None


def __getattr__(name):
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(name)
    return _NoOp()
'
if [ -f "$STUB_DIR/__init__.py" ] && cmp -s "$STUB_DIR/__init__.py" <(printf '%s' "$STUB_SRC"); then
  say "wandb stand-in present: $STUB_DIR (kept)"
else
  say "writing wandb stand-in: $STUB_DIR/__init__.py"
  mkdir -p "$STUB_DIR"
  printf '%s' "$STUB_SRC" > "$STUB_DIR/__init__.py"
fi

# 4. check
say "checking that the reference models construct ..."
"$VPY" - <<'EOF'
import logging, warnings
logging.disable(logging.WARNING)
warnings.filterwarnings("ignore")
import torch, dynvision, dynvision.models as M
from importlib.metadata import version
print(f"[setup_reference] dynvision {version('dynvision')} at {dynvision.__file__}")
print(f"[setup_reference] torch {torch.__version__} at {torch.__file__}")
small = dict(n_classes=10)
checks = [
    ("DyRCNNx2", dict(input_dims=(2, 3, 32, 32))),
    ("DyRCNNx4", dict(input_dims=(2, 3, 32, 32))),
    ("DyRCNNx8", dict(input_dims=(2, 3, 64, 64))),
    ("CorNetRT", dict(input_dims=(2, 3, 64, 64), init_with_pretrained=False)),
    ("CordsNet", dict(input_dims=(2, 3, 64, 64), init_with_pretrained=False, idle_timesteps=1)),
]
for name, kw in checks:
    m = getattr(M, name)(**small, **kw).eval()
    with torch.no_grad():
        y = m(torch.randn(1, *kw["input_dims"]))
    n = sum(p.numel() for p in m.parameters())
    print(f"[setup_reference]   {name:9s} ok  params={n:>9d}  out={tuple(y.shape)}")
EOF
say "done. venv python: $VPY"
