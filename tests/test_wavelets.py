"""The general filter-bank DWT (every PyWavelets discrete wavelet) against PyWavelets itself."""

from __future__ import annotations

import json
import warnings
from importlib import resources

import numpy as np
import pytest
import torch

from wavemixer import dwt2, idwt2, wavedec2, waverec2
from wavemixer.filterbank import (
    WAVELET_FAMILIES,
    analysis_offset,
    dwt_max_level,
    filter_bank,
    filter_length,
    wavelet_names,
)

# The comparisons with PyWavelets go beyond the largest level on purpose, where both warn alike
# (test_level_too_high_warns_as_pywt checks the warning itself, with its own filter).
pytestmark = pytest.mark.filterwarnings("ignore:Level value of .* is too high:UserWarning")

pywt = pytest.importorskip("pywt")

ALL_MODES = list(pywt.Modes.modes)
# Default run: one wavelet per family shape (orthogonal short/long, symmetric, biorthogonal both ways, dmey's 62
# taps); sizes odd, even, 1-wide and shorter than most of these filters.
WAVELETS = ["db2", "sym4", "coif1", "bior2.2", "rbio3.1", "db6"]
SIZES = [(7, 8), (3, 5), (1, 4), (12, 11)]


def _coeffs_equal(ours, theirs, atol, rtol=0.0):
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours[0].double().numpy(), theirs[0], atol=atol, rtol=rtol)
    for our_level, their_level in zip(ours[1:], theirs[1:]):
        for band, ref in zip(our_level, their_level):
            assert band.shape == ref.shape
            np.testing.assert_allclose(band.double().numpy(), ref, atol=atol, rtol=rtol)


def _check_against_pywt(wavelet, mode, size, level, x=None):
    x = torch.randn(2, *size, dtype=torch.float64) if x is None else x
    arr = x.numpy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = pywt.wavedec2(arr, wavelet, mode=mode, level=level)
    except ValueError:  # pywt refuses ([anti]reflect on a 1-sample axis): so must we
        with pytest.raises(ValueError, match="at least 2 samples"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wavedec2(x, level, mode=mode, wavelet=wavelet)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = wavedec2(x, level, mode=mode, wavelet=wavelet)
    # fp64: 1e-10 relative to the largest coefficient (smooth/antireflect extrapolate to 1e6 on tiny inputs)
    scale = max(1.0, np.abs(expected[0]).max(), *(np.abs(b).max() for level in expected[1:] for b in level))
    atol = 1e-10 * scale
    _coeffs_equal(ours, expected, atol=atol)
    rec = waverec2(ours, wavelet, mode)
    np.testing.assert_allclose(rec.numpy(), pywt.waverec2(expected, wavelet, mode=mode), atol=atol, rtol=0)
    if wavelet == "dmey":  # an FIR approximation of Meyer's wavelet: not perfectly reconstructing, in pywt neither
        return
    # perfect reconstruction (pywt.waverec2 may return one extra row/column for odd sizes)
    np.testing.assert_allclose(rec[..., : size[0], : size[1]].numpy(), arr, atol=atol, rtol=0)


def test_table_is_pywavelets_filter_banks_exactly():
    names = pywt.wavelist(kind="discrete")
    assert wavelet_names() == names
    for name in names:
        assert filter_bank(name) == tuple(tuple(f) for f in pywt.Wavelet(name).filter_bank), name
    assert set(WAVELET_FAMILIES) == set(pywt.families(short=True)[:7])  # the discrete families
    assert {n.rstrip("0123456789.") for n in names} == set(WAVELET_FAMILIES)  # every name is of one of them
    meta = json.loads(resources.files("wavemixer").joinpath("wavelet_filters.json").read_text())
    assert meta["order"] == ["dec_lo", "dec_hi", "rec_lo", "rec_hi"]


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("wavelet", WAVELETS)
def test_wavedec2_waverec2_equal_pywt_fp64(wavelet, mode):
    for size in SIZES:
        for level in (1, 2):
            _check_against_pywt(wavelet, mode, size, level)


def test_dmey_on_inputs_much_shorter_than_its_62_taps():
    for mode in ALL_MODES:
        _check_against_pywt("dmey", mode, (5, 9), 2)


@pytest.mark.slow
@pytest.mark.parametrize("wavelet", pywt.wavelist(kind="discrete"))
def test_every_wavelet_every_mode_equals_pywt(wavelet):
    for mode in ALL_MODES:
        for size in [(1, 1), (2, 3), (9, 16), (33, 20)]:
            for level in (1, 3):
                _check_against_pywt(wavelet, mode, size, level)


@pytest.mark.parametrize(("dtype", "atol", "rtol"), [(torch.float32, 1e-5, 1e-5), (torch.bfloat16, 0.1, 0.03)])
@pytest.mark.parametrize("wavelet", ["db2", "bior2.2"])
def test_low_precision_within_stated_tolerance(wavelet, dtype, atol, rtol):
    """fp32: 1e-5; bf16 (8-bit mantissa filters and inputs): 3 % relative + 0.1 absolute on N(0,1) data."""
    x = torch.randn(2, 3, 17, 12, dtype=torch.float64)
    expected = pywt.wavedec2(x.to(dtype).double().numpy(), wavelet, mode="symmetric", level=2)
    ours = wavedec2(x.to(dtype), 2, mode="symmetric", wavelet=wavelet)
    assert ours[0].dtype == dtype
    _coeffs_equal(ours, expected, atol=atol, rtol=rtol)
    rec = waverec2(ours, wavelet, "symmetric")[..., :17, :12]
    np.testing.assert_allclose(rec.double().numpy(), x.to(dtype).double().numpy(), atol=atol, rtol=rtol)


def test_autocast_bf16_runs_the_filter_bank():
    x = torch.randn(1, 2, 9, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ll, _ = dwt2(x, "periodization", "sym3")
    assert ll.dtype == torch.bfloat16
    ref, _ = dwt2(x, "periodization", "sym3")
    torch.testing.assert_close(ll.float(), ref, atol=0.1, rtol=0.03)


@pytest.mark.parametrize("wavelet", ["db2", "sym6"])  # 4 taps: one GEMM over windows; 12 taps: conv1d
@pytest.mark.parametrize("mode", ["symmetric", "antireflect", "periodization", "zero"])
def test_gradcheck_fp64(mode, wavelet):
    x = torch.randn(1, 1, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dwt2(t, mode, wavelet)[0], (x,))
    side = filter_length(wavelet) // 2 + 1  # idwt2 gives 2n - F + 2 samples per axis
    bands = [torch.randn(1, 1, side, side, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    assert torch.autograd.gradcheck(lambda a, h, v, d: idwt2(a, (h, v, d), wavelet, mode), tuple(bands))


@pytest.mark.parametrize(("n", "wavelet"), [(1, "db2"), (2, "db2"), (5, "sym6"), (6, "sym6")])
def test_idwt2_of_few_coefficients_is_shaped_as_pywt(n, wavelet):
    c = np.ones((n, n))
    expected = pywt.idwt2((c, (c, c, c)), wavelet, "symmetric").shape  # (0, 0) where 2n - F + 2 == 0
    t = torch.ones(1, 1, n, n)
    assert idwt2(t, (t, t, t), wavelet, "symmetric").shape == (1, 1, *expected)


def test_idwt2_of_too_few_coefficients_is_one_line():
    t = torch.ones(1, 1, 3, 3)
    with pytest.raises(ValueError, match=r"3x3 coefficients are too few for wavelet 'sym6' \(12 taps\)"):
        idwt2(t, (t, t, t), "sym6", "symmetric")


@pytest.mark.parametrize("wavelet", ["db2", "sym6"])
def test_filter_bank_analysis_is_a_few_ops_at_any_size(wavelet):
    """A 128x128 map takes the same few kernels as a small one: multiplying the overlapping window view
    directly made ``matmul`` loop over every row (10^5 select + clone ops, 7 GB of profiler records)."""
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(2, 8, 128, 128, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        ll, _ = dwt2(x, "symmetric", wavelet)
        ll.sum().backward()
    per_row = sum(e.name in ("aten::select", "aten::clone") for e in prof.events())
    assert per_row < 50, per_row


def test_subband_convention_is_pywt():
    """cH responds to a horizontal edge (change along the height), cV to a vertical one, as pywt."""
    horizontal = torch.zeros(16, 16, dtype=torch.float64)
    horizontal[8:] = 1
    _, (ch, cv, cd) = dwt2(horizontal, "symmetric", "db2")
    assert ch.abs().max() > 0.1 and cv.abs().max() < 1e-12 and cd.abs().max() < 1e-12
    _, (ch, cv, cd) = dwt2(horizontal.T.contiguous(), "symmetric", "db2")
    assert cv.abs().max() > 0.1 and ch.abs().max() < 1e-12


@pytest.mark.parametrize(
    ("size", "level", "wavelet"),
    [((32, 32), 4, "db2"), ((32, 32), 5, "haar"), ((32, 9), 3, "db2"), ((8, 8), 1, "db4"), ((64, 64), 3, "sym4")],
)
def test_level_too_high_warns_as_pywt(size, level, wavelet):
    x = np.zeros(size)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        pywt.wavedec2(x, wavelet, level=level)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        wavedec2(torch.from_numpy(x), level, wavelet=wavelet)
    assert len(ours) == len(theirs)
    for ours_w, theirs_w in zip(ours, theirs):
        assert str(ours_w.message).startswith(str(theirs_w.message).rstrip("."))
    assert dwt_max_level(size[0], len(filter_bank(wavelet)[0])) == pywt.dwt_max_level(size[0], wavelet)


def test_unknown_wavelet_is_a_one_line_error_naming_the_families():
    with pytest.raises(ValueError) as err:
        wavedec2(torch.zeros(4, 4), 1, wavelet="db99")
    message = str(err.value)
    assert "\n" not in message and "'db99'" in message
    assert all(family in message for family in WAVELET_FAMILIES)


@pytest.mark.parametrize("wavelet", ["haar", "db2", "bior2.2", "sym4", "coif2", "db6", "rbio3.1"])
def test_offset_recentres_upsampled_coefficients_on_their_pixels(wavelet):
    """An impulse's low-pass energy, upsampled x2 and cropped by the block's offset, is centred on it."""
    offset = analysis_offset(wavelet, "zero")
    errors = []
    for p in (20, 21):  # both parities: each sees one phase of the filter
        x = torch.zeros(48, 48, dtype=torch.float64)
        x[:, p] = 1.0  # a vertical line at column p
        ll = dwt2(x, "zero", wavelet)[0][20]
        energy = ll**2
        centre = float((torch.arange(ll.numel()) * energy).sum() / energy.sum())
        errors.append(2 * centre + 0.5 - offset - p)
    assert max(abs(e) for e in errors) <= 1.0 and abs(sum(errors) / 2) <= 0.6, errors
    assert analysis_offset(wavelet, "periodization") == 0


def test_filter_bank_exports():
    """torch.export of the functional round trip (models compile and export in tests/test_export.py)."""

    def roundtrip(x):
        return waverec2(wavedec2(x, 2, mode="antireflect", wavelet="db2"), "db2", "antireflect")

    x = torch.randn(2, 3, 19, 16)

    class Roundtrip(torch.nn.Module):
        def forward(self, x):
            return roundtrip(x)

    exported = torch.export.export(Roundtrip(), (x,))
    torch.testing.assert_close(exported.module()(x), roundtrip(x))
    torch.testing.assert_close(roundtrip(x)[..., :19, :16], x, atol=1e-5, rtol=1e-5)


def test_packed_layout_is_ll_h_v_d_per_channel_as_haar_packed():
    from wavemixer.dwt import haar_packed
    from wavemixer.filterbank import fb_packed

    x = torch.randn(2, 3, 9, 12, dtype=torch.float64)
    ll, (h, v, d) = dwt2(x, "symmetric", "sym3")
    torch.testing.assert_close(fb_packed(x, "sym3", "symmetric"), torch.stack((ll, h, v, d), 2).flatten(1, 2))
    torch.testing.assert_close(fb_packed(x, "haar", "symmetric"), haar_packed(x, "symmetric"))
