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
from .images import Images
from .protocol import INTRO, NOISE_MODES, NOISES, ON, THRESHOLD, Protocol, Settings
from .result import COLUMNS, ExperimentError, ExperimentResult, ModelInfo, Recorder, Row
from .runner import output_paths, run_protocol
from .silence import parameter_kinds, silenced, weights_by_kind
from .table import PROTOCOLS, check_levels, parse_levels, protocol
from .tidy import format_table, level_text, to_csv, write_csv
from .variants import Variant, load_variant_weights, make_variants, parse_sweep, sweep_params

__all__ = ["Images", "INTRO", "NOISE_MODES", "NOISES", "ON", "THRESHOLD", "Protocol", "Settings", "COLUMNS",
           "ExperimentError", "ExperimentResult", "ModelInfo", "Recorder", "Row", "output_paths", "run_protocol",
           "parameter_kinds", "silenced", "weights_by_kind", "PROTOCOLS", "check_levels", "parse_levels",
           "protocol", "format_table", "level_text", "to_csv", "write_csv", "Variant", "load_variant_weights",
           "make_variants", "parse_sweep", "sweep_params"]
