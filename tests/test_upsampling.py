"""The matrix-form x2 bilinear upsampling against F.interpolate (PyTorch's own kernel is the reference)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wavemixer import create_model
from wavemixer.upsampling import BilinearUpsample2x, bilinear_matrix


def _reference(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (4, 8, 14, 14), (1, 2, 1, 9), (2, 4, 33, 40)])
def test_matches_interpolate_fp32_forward_and_backward(shape):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    up = BilinearUpsample2x()
    out = up(x)
    expected = _reference(x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    grad = torch.randn_like(out)
    (g_ours,) = torch.autograd.grad(out, x, grad)
    (g_ref,) = torch.autograd.grad(expected, x, grad)
    torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-12)


def test_matrix_rows_are_the_align_corners_false_weights():
    m = bilinear_matrix(4, dtype=torch.float32, device=torch.device("cpu"))
    expected = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0],  # clamped at the border
            [0.75, 0.25, 0.0, 0.0],
            [0.25, 0.75, 0.0, 0.0],
            [0.0, 0.75, 0.25, 0.0],
            [0.0, 0.25, 0.75, 0.0],
            [0.0, 0.0, 0.75, 0.25],
            [0.0, 0.0, 0.25, 0.75],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    torch.testing.assert_close(m, expected, rtol=0, atol=0)


def test_large_maps_fall_back_to_interpolate_exactly():
    x = torch.randn(1, 2, 70, 70)  # above the fp32 threshold: the kernel itself, bit for bit
    assert torch.equal(BilinearUpsample2x()(x), _reference(x))


def test_bf16_and_autocast_stay_within_bf16_rounding():
    x = torch.randn(2, 8, 16, 16)
    expected = _reference(x)
    out_bf16 = BilinearUpsample2x()(x.bfloat16())
    assert out_bf16.dtype == torch.bfloat16
    torch.testing.assert_close(out_bf16.float(), expected, rtol=2e-2, atol=2e-2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_auto = BilinearUpsample2x()(x)
    torch.testing.assert_close(out_auto.float(), expected, rtol=2e-2, atol=2e-2)


def test_channels_last_input_keeps_its_layout():
    x = torch.randn(2, 8, 10, 12).to(memory_format=torch.channels_last)
    out = BilinearUpsample2x()(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, _reference(x.contiguous()), rtol=0, atol=1e-6)


def test_bilinear_model_equals_a_model_using_interpolate():
    torch.manual_seed(0)
    model = create_model("wavemix_lite_8_10_mnist").eval()
    x = torch.randn(3, 1, 28, 28)
    fast = model(x)
    ups = [m for m in model.modules() if isinstance(m, BilinearUpsample2x)]
    assert len(ups) == 10  # one per block: depth 10, one level
    for mixer_up in ups:
        mixer_up.forward = lambda t: _reference(t)  # the plain kernel, same module otherwise
    torch.testing.assert_close(fast, model(x), rtol=0, atol=1e-5)
