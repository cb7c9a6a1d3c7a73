"""The Haar DWT against PyWavelets, its inverse, and its behaviour across dtypes, autograd and compilers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavemixer import dwt2, idwt2, wavedec2, waverec2
from wavemixer.dwt import haar_packed, packed_to_reference_order, reference_order_permutation

# The comparisons with PyWavelets go beyond the largest level on purpose, where both warn alike
# (tests/test_wavelets.py::test_level_too_high_warns_as_pywt checks the warning itself).
pytestmark = pytest.mark.filterwarnings("ignore:Level value of .* is too high:UserWarning")

pywt = pytest.importorskip("pywt")

ALL_MODES = ["zero", "symmetric", "constant", "periodization", "reflect", "periodic", "smooth", "antisymmetric",
             "antireflect"]  # fmt: skip


def _assert_matches_pywt(coeffs, expected, atol):
    assert len(coeffs) == len(expected)
    np.testing.assert_allclose(coeffs[0].numpy(), expected[0], atol=atol, rtol=0)
    for ours, theirs in zip(coeffs[1:], expected[1:]):
        for band, ref in zip(ours, theirs):
            assert band.shape == ref.shape
            np.testing.assert_allclose(band.numpy(), ref, atol=atol, rtol=0)


@pytest.mark.parametrize("level", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(32, 32), (16, 40), (33, 45), (17, 9), (31, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wavedec2_matches_pywt(level, size, dtype):
    x = torch.randn(2, 3, *size, dtype=dtype)
    expected = pywt.wavedec2(x.numpy(), "haar", mode="zero", level=level)
    atol = 1e-5 if dtype == torch.float32 else 1e-12
    _assert_matches_pywt(wavedec2(x, level), expected, atol)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_every_boundary_mode_matches_pywt_on_odd_sizes(mode):
    x = torch.randn(1, 2, 13, 7, dtype=torch.float64)
    expected = pywt.wavedec2(x.numpy(), "haar", mode=mode, level=3)
    _assert_matches_pywt(wavedec2(x, 3, mode=mode), expected, 1e-12)


def test_subband_names_follow_pywt():
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=torch.float64)
    ll, (h, v, d) = dwt2(x)
    # a=1 b=2 c=3 d=5: LL=(a+b+c+d)/2, H=top-bottom, V=left-right, D=diagonal
    assert ll.item() == pytest.approx(5.5)
    assert h.item() == pytest.approx((1 + 2 - 3 - 5) / 2)
    assert v.item() == pytest.approx((1 - 2 + 3 - 5) / 2)
    assert d.item() == pytest.approx((1 - 2 - 3 + 5) / 2)
    _, (cH, cV, cD) = pywt.dwt2(x.numpy(), "haar")
    assert (h.item(), v.item(), d.item()) == pytest.approx((cH.item(), cV.item(), cD.item()))


@pytest.mark.parametrize("size", [(16, 16), (15, 22), (9, 5)])
@pytest.mark.parametrize("level", [1, 2, 4])
def test_perfect_reconstruction(size, level):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    rec = waverec2(wavedec2(x, level))
    assert rec.shape[-2] >= size[0] and rec.shape[-1] >= size[1]
    torch.testing.assert_close(rec[..., : size[0], : size[1]], x, atol=1e-12, rtol=0)
    expected = pywt.waverec2(pywt.wavedec2(x.numpy(), "haar", mode="zero", level=level), "haar", mode="zero")
    np.testing.assert_allclose(rec.numpy(), expected, atol=1e-12)


def test_idwt2_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        idwt2(torch.zeros(1, 4, 4), (torch.zeros(1, 4, 4), torch.zeros(1, 4, 3), torch.zeros(1, 4, 4)))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown boundary mode"):
        dwt2(torch.zeros(1, 4, 4), mode="wrap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level must be >= 1"):
        wavedec2(torch.zeros(1, 4, 4), 0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        dwt2(torch.zeros(4))
    with pytest.raises(ValueError, match="at least 2 samples"):
        dwt2(torch.zeros(1, 1, 1), mode="reflect")


def test_packed_layout_and_reference_order():
    x = torch.randn(2, 3, 8, 6)
    ll, (h, v, d) = dwt2(x)
    packed = haar_packed(x)
    assert packed.shape == (2, 12, 4, 3)
    torch.testing.assert_close(packed[:, 0::4], ll)
    torch.testing.assert_close(packed[:, 1::4], h)
    torch.testing.assert_close(packed[:, 2::4], v)
    torch.testing.assert_close(packed[:, 3::4], d)
    # reference layout: all LL channels, then per channel (H, V, D)
    ref = packed_to_reference_order(packed)
    torch.testing.assert_close(ref[:, :3], ll)
    torch.testing.assert_close(ref[:, 3:].reshape(2, 3, 3, 4, 3), torch.stack((h, v, d), dim=2))
    # by hand: the five LL slots (every fourth), then each channel's H, V, D
    assert reference_order_permutation(5) == [0, 4, 8, 12, 16, 1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_follows_input_dtype(dtype):
    x = torch.randn(1, 2, 8, 8, dtype=dtype)
    coeffs = wavedec2(x, 2)
    assert all(t.dtype == dtype for t in [coeffs[0], *coeffs[1], *coeffs[2]])
    ref = wavedec2(x.double(), 2)
    tol = 1e-2 if dtype in (torch.bfloat16, torch.float16) else 1e-5
    for got, want in zip([coeffs[0], *coeffs[1], *coeffs[2]], [ref[0], *ref[1], *ref[2]], strict=True):
        torch.testing.assert_close(got.double(), want, atol=tol * 8, rtol=tol)


def test_gradient_is_exact():
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)

    def f(t):
        coeffs = wavedec2(t, 2, mode="symmetric")
        return torch.cat([coeffs[0].flatten(), *(b.flatten() for lvl in coeffs[1:] for b in lvl)])

    assert torch.autograd.gradcheck(f, (x,))


def test_autocast_forward_and_backward():
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    conv = torch.nn.Conv2d(4, 4, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        packed = haar_packed(conv(x))
        loss = packed.float().square().mean()
    loss.backward()
    assert packed.dtype == torch.bfloat16
    low_grad, x.grad = x.grad, None
    haar_packed(conv(x)).square().mean().backward()  # the same in fp32
    torch.testing.assert_close(low_grad, x.grad, rtol=2e-2, atol=2e-2 * x.grad.abs().max().item())


def test_compile_fullgraph_and_export():
    x = torch.randn(2, 3, 16, 12)
    compiled = torch.compile(lambda t: haar_packed(haar_packed(t)[:, 0::4]), fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), haar_packed(haar_packed(x)[:, 0::4]))

    class Dec(torch.nn.Module):
        def forward(self, t):
            coeffs = wavedec2(t, 2)
            return coeffs[0], *coeffs[1], *coeffs[2]

    exported = torch.export.export(Dec(), (x,))
    for a, b in zip(exported.module()(x), Dec()(x)):
        torch.testing.assert_close(a, b)
