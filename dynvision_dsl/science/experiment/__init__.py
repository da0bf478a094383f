"""DynVision's stimulus protocols on compiled models: one module per protocol (its runner and
its row of the one table, `table.PROTOCOLS`), shared stimuli, measures and the tidy CSV.

    models = {"fast": dynvision_dsl.compile(spec, {"tau": "2 ms"}), "slow": dynvision_dsl.compile(spec)}
    result = run_protocol("duration", models, images)
    result.values("normalised")["fast"]["V1"]      # one value per level

Time is counted in model steps from the first frame (the model's own `idle` steps run before
it and are not recorded); ms = step * dt. The response of an area at a step is mean |r| over
channels and space, averaged over the images (an area that is still silent responds 0). A NaN
or inf in any area stops the experiment with `NonFiniteError`, naming area, step and item.
Each protocol's module docstring says what it shows and measures.
"""
from __future__ import annotations

import importlib

# name -> the submodule that defines it; loaded on first use, so that listing the protocols
# (`dynv`'s argument parser reads table.PROTOCOLS) imports neither torch nor numpy
_EXPORTS = {
    "Images": "images",
    "INTRO": "protocol",
    "NOISE_MODES": "protocol",
    "NOISES": "protocol",
    "ON": "protocol",
    "THRESHOLD": "protocol",
    "ExperimentError": "protocol",
    "Protocol": "protocol",
    "Settings": "protocol",
    "COLUMNS": "result",
    "ExperimentResult": "result",
    "ModelInfo": "result",
    "Recorder": "result",
    "Row": "result",
    "output_paths": "runner",
    "run_protocol": "runner",
    "parameter_kinds": "silence",
    "silenced": "silence",
    "weights_by_kind": "silence",
    "PROTOCOLS": "table",
    "check_levels": "table",
    "parse_levels": "table",
    "get_protocol": "table",
    "format_table": "tidy",
    "level_text": "tidy",
    "to_csv": "tidy",
    "write_csv": "tidy",
    "Variant": "variants",
    "load_variant_weights": "variants",
    "make_variants": "variants",
    "parse_sweep": "variants",
    "sweep_params": "variants",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
