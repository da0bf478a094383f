"""The compiled model as users hold it: the emitted module's class plus the
conveniences of an in-process model (run with recordings, graph, code)."""
from __future__ import annotations

import linecache
from dataclasses import dataclass

import networkx as nx
import torch
from torch import nn


@dataclass
class RunResult:
    """logits (B, T, classes); responses[area] (B, T, C, H, W), zeros where
    silent; present[area] (T,) bool."""

    logits: torch.Tensor
    responses: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]


class DynModel(nn.Module):
    """Base of every in-process compiled model; see `dynvision_dsl.compile`."""

    graph: nx.MultiDiGraph
    program = None

    @property
    def code(self) -> str:
        """The Python source of the step functions (one per step variant)."""
        return "\n".join(step.source for step in self.program.steps)

    def run(self, x: torch.Tensor, record=None) -> RunResult:
        """Simulate and record area responses (all areas when `record` is None)."""
        record = list(self.areas) if record is None else list(record)
        for name in record:
            if name not in self.areas:
                from .diagnostics import did_you_mean
                guess = did_you_mean(name, self.areas)
                raise KeyError(f"unknown area '{name}'" + (f" (did you mean '{guess}'?)" if guess else ""))
        logits, raw = self.simulate(x, record)
        steps = logits.shape[1]
        responses, present = {}, {}
        for name in record:
            shape = (logits.shape[0],) + tuple(self.area_shapes[name])
            zero = logits.new_zeros(shape)
            responses[name] = torch.stack([v if v is not None else zero for v in raw[name]], 1)
            present[name] = torch.tensor([v is not None for v in raw[name]], dtype=torch.bool)
        assert all(len(v) == steps for v in raw.values())
        return RunResult(logits, responses, present)

    def __reduce_ex__(self, protocol):
        raise TypeError("a compiled DynModel is not picklable; save model.state_dict() and recompile the spec, "
                        "or save the module that `dynv compile` writes")


def instantiate(source: str, class_name: str, program, graph) -> DynModel:
    """Execute the emitted module's source and return an instance of its class
    with DynModel's conveniences mixed in."""
    filename = f"<dynvision:{class_name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"__name__": f"dynvision_dsl.generated.{class_name}"}
    exec(compile(source, filename, "exec"), namespace)
    generated = namespace[class_name]
    cls = type(class_name, (generated, DynModel), {"__module__": namespace["__name__"], "__doc__": generated.__doc__})
    model = cls()
    model.program = program
    model.graph = graph
    return model
