"""The formulations that ``scripts/bench_formulations.py`` times must compute what the layers they replace compute,
or its timings compare different networks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from wavemixer import create_model

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_formulations.py"


@pytest.fixture(scope="module")
def formulations():
    spec = importlib.util.spec_from_file_location("bench_formulations", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.parametrize("size", [(1, 1), (4, 4), (5, 7)])
def test_transposed_conv_as_phase_convs_is_exact(formulations, size):
    torch.manual_seed(0)
    convt = torch.nn.ConvTranspose2d(6, 5, 4, stride=2, padding=1).double()
    x = torch.randn(2, 6, *size, dtype=torch.float64, requires_grad=True)
    expected = convt(x)
    out = formulations.transposed_as_phases(convt, x)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    grad = torch.randn_like(out)
    ours = torch.autograd.grad(out, (x, convt.weight, convt.bias), grad)
    ref = torch.autograd.grad(expected, (x, convt.weight, convt.bias), grad)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_pointwise_as_bmm_is_exact(formulations):
    conv = torch.nn.Conv2d(8, 3, 1).double()
    x = torch.randn(2, 8, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(formulations.pointwise_bmm(conv, x), conv(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["bmm", "phase"])
def test_swapped_model_matches_and_is_restored(formulations, name):
    torch.manual_seed(0)
    model = create_model("wavemix_lite_144_7_cifar10", final_dim=16, depth=2).double().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        plain = model(x)
        with formulations.variant(model, name):
            swapped = model(x)
            assert any("forward" in vars(m) for m in model.modules())
    assert not any("forward" in vars(m) for m in model.modules())
    torch.testing.assert_close(swapped, plain, rtol=0, atol=1e-10)
