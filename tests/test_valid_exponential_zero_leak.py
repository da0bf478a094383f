"""The exponential solver where a per-unit leak coefficient is zero or tiny at run time
(`tau * dr/dt = -r * g + input`, g = relu(input - 0.5)): the limit b*dt, never 0/0."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dynvision_dsl as dd

pytestmark = pytest.mark.backend

SPEC = (Path(__file__).resolve().parent / "valid" / "exponential_zero_leak.dyn").read_text()
TAU, DT, STEPS = 4.0, 1.0, 8


def _image() -> torch.Tensor:
    """Units with g = 0 exactly, g tiny (1e-9 .. 1e-3) and g of order 1."""
    values = [0.0, 0.2, 0.5, 0.5 + 1e-9, 0.5 + 1e-7, 0.5 + 1e-5, 0.5 + 1e-3, 0.7, 0.9, 1.0, 1.5, 2.0, 0.3, 0.4, 0.6, 3.0]
    return torch.tensor(values, dtype=torch.float64).view(1, 1, 4, 4)


def _closed_form(i: torch.Tensor, n: int) -> torch.Tensor:
    """r after n steps from 0: i/g (1 - e^{-g n dt/tau}), and i n dt/tau where g = 0 (math, float64)."""
    g = torch.relu(i - 0.5)
    out = torch.empty_like(i)
    for k, (gk, ik) in enumerate(zip(g.flatten().tolist(), i.flatten().tolist())):
        z = gk * n * DT / TAU
        out.view(-1)[k] = ik * n * DT / TAU if gk == 0 else ik / gk * -torch.expm1(torch.tensor(-z, dtype=torch.float64))
    return out


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_zero_and_tiny_leaks_step_to_the_limit(dtype):
    model = dd.compile(SPEC).to(dtype)
    x = _image().to(dtype)
    got = model.run(x, record=["V1"]).responses["V1"].double()  # check_finite: a NaN would raise here
    tol = 1e-10 if dtype == torch.float64 else 2e-6
    for n in range(1, STEPS + 1):
        want = _closed_form(_image(), n)
        assert torch.allclose(got[0, n - 1], want[0], rtol=tol, atol=tol), n


def test_the_gradient_at_a_zero_leak_is_finite():
    model = dd.compile(SPEC).double()
    x = _image().requires_grad_(True)
    model.run(x, record=["V1"]).responses["V1"].sum().backward()
    assert torch.isfinite(x.grad).all()
