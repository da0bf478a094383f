"""`dynv sweep`: a grid of variants as a Snakemake workflow (train each, run its experiments,
summarise), runnable here with `--cores N` and on a cluster with any executor plugin or profile."""
from .plan import Plan, SweepError, Variant, config, expand, make_plan, parse_grid, slug, variant_names
from .workflow import SNAKEFILE, to_yaml, write_sweep

__all__ = ["Plan", "SweepError", "Variant", "config", "expand", "make_plan", "parse_grid", "slug",
           "variant_names", "SNAKEFILE", "to_yaml", "write_sweep"]
