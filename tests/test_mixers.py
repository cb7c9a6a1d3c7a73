"""Token mixers and wavelets as options of the WaveMix block and of every model."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from wavemixer import WaveMix, WaveMixSegmentation, WaveMixSR, create_model
from wavemixer.blocks import WaveMixBlock
from wavemixer.flops import count_dwt_flops, count_macs
from wavemixer.hub import from_pretrained, save_pretrained
from wavemixer.mixers import HAAR_ONLY_MIXERS, MIXERS, mixer_wavelet_pairs
from wavemixer.registry import MODEL_CLASSES

# Deep mixers on tiny inputs run levels past the input size on purpose; the warning has its own test
# (test_level_beyond_the_input_size_warns_once, with its own filter).
pytestmark = pytest.mark.filterwarnings("ignore:Level value of .* is too high:UserWarning")

# (mixer, wavelet): every mixer on the Haar geometry, and the ones that take a longer wavelet's support
VARIANTS = mixer_wavelet_pairs()
IDS = [f"{m}-{w}" for m, w in VARIANTS]
FLEN = {"haar": 2, "db2": 4, "bior2.2": 6}
GRID_H, GRID_W = 16, 16  # FOURIER_GRID, written out: the learnt filter is 16 x (16 // 2 + 1) complex numbers


def _tiny(mixer, wavelet, **kw):
    args = dict(num_classes=3, depth=2, final_dim=16, level=2, stem="strided", stride=1, dropout=0.0)
    return WaveMix(**{**args, **kw}, mixer=mixer, wavelet=wavelet)


def _mixer_params(mixer: str, dim: int, flen: int) -> int:
    """Hand-derived trainable parameters of one level's mixer in a block of width C = dim."""
    if mixer == "conv":  # Conv2d(C/4 -> C, F x F) + bias
        return dim // 4 * dim * flen * flen + dim
    if mixer == "fourier":  # C complex filters on the 16 x 9 real-FFT half-plane
        return dim * GRID_H * (GRID_W // 2 + 1) * 2
    if mixer in ("dwt", "random", "avgpool"):  # fixed transforms (random's filter bank is a buffer)
        return 0
    raise AssertionError(f"a new mixer {mixer!r}: derive its parameter count by hand and add it here")


def _coeffs(n: int, flen: int) -> int:
    return (n + flen - 1) // 2  # PyWavelets' output length; ceil(n / 2) for Haar


def _mixer_macs(mixer: str, dim: int, flen: int, h: int, w: int) -> int:
    """Hand-derived multiply-accumulates (convolutions and matrix products) of one mixer on (C/4, h, w)."""
    c4, lh, lw = dim // 4, _coeffs(h, flen), _coeffs(w, flen)
    if mixer == "dwt" and flen > 2:  # separable: low+high along W on h rows, then along H on both
        return c4 * flen * (2 * h * lw + 4 * lh * lw)
    if mixer == "random":  # four F x F filters per channel
        return c4 * 4 * flen * flen * lh * lw
    if mixer == "conv":  # every output channel sees C/4 x F x F inputs
        return dim * c4 * flen * flen * lh * lw
    if mixer in ("dwt", "avgpool", "fourier"):  # Haar DWT (element-wise, see count_dwt_flops); FFTs are not counted
        return 0
    raise AssertionError(f"a new mixer {mixer!r}: derive its multiply-accumulates by hand and add them here")


@pytest.mark.parametrize(("mixer", "wavelet"), VARIANTS, ids=IDS)
@pytest.mark.parametrize("size", [(13, 9), (5, 7), (16, 11)])
def test_block_preserves_odd_sizes(mixer, wavelet, size):
    block = WaveMixBlock(16, level=3, mixer=mixer, wavelet=wavelet)
    x = torch.randn(2, 16, *size)
    assert block(x).shape == x.shape


@pytest.mark.parametrize(("mixer", "wavelet"), VARIANTS, ids=IDS)
def test_every_family_takes_the_options(mixer, wavelet):
    x = torch.randn(1, 3, 19, 13)
    seg = WaveMixSegmentation(num_classes=4, depth=1, final_dim=16, level=2, mixer=mixer, wavelet=wavelet)
    assert seg(x).shape == (1, 4, 19, 13)
    sr = WaveMixSR(scale=2, depth=1, final_dim=16, level=2, mixer=mixer, wavelet=wavelet)
    assert sr(x).shape == (1, 3, 38, 26)
    for cls in MODEL_CLASSES.values():
        assert (seg.config["mixer"], seg.config["wavelet"]) == (mixer, wavelet)
        assert cls(final_dim=16, depth=1, mixer=mixer, wavelet=wavelet).config["mixer"] == mixer
    model = create_model("wavemix_lite_8_5_fmnist", mixer=mixer, wavelet=wavelet)  # registry overrides
    assert (model.blocks[0].mixer, model.blocks[0].wavelet) == (mixer, wavelet)


@pytest.mark.parametrize(("mixer", "wavelet"), VARIANTS, ids=IDS)
def test_parameter_count_is_the_hand_formula(mixer, wavelet):
    depth, level, dim = 2, 2, 16
    base = sum(p.numel() for p in _tiny("dwt", "haar").parameters())
    model = _tiny(mixer, wavelet)
    extra = depth * level * _mixer_params(mixer, dim, FLEN[wavelet])
    assert sum(p.numel() for p in model.parameters()) == base + extra
    buffers = {k: v for k, v in model.state_dict().items() if ".mixers." in k}
    if mixer == "random":  # the fixed filter bank travels in the state dict: 4 filters of F x F per level
        assert len(buffers) == depth * level
        assert all(v.shape == (4, 1, FLEN[wavelet], FLEN[wavelet]) for v in buffers.values())
        flat = next(iter(buffers.values())).flatten(1).double()
        torch.testing.assert_close(flat @ flat.T, torch.eye(4, dtype=torch.float64), atol=1e-6, rtol=0)
    elif mixer != "conv" and mixer != "fourier":
        assert not buffers


@pytest.mark.parametrize(("mixer", "wavelet"), VARIANTS, ids=IDS)
@pytest.mark.parametrize("size", [(13, 9), (8, 8)])
def test_mixer_macs_are_the_hand_formula(mixer, wavelet, size):
    block = WaveMixBlock(16, level=2, mixer=mixer, wavelet=wavelet)
    flen = FLEN[wavelet]
    assert count_macs(block.mixers[0], (4, *size)) == _mixer_macs(mixer, 16, flen, *size)
    if flen == 2:  # same geometry as the Haar model: the whole model differs by exactly the mixers' MACs
        h1, w1 = _coeffs(size[0], 2), _coeffs(size[1], 2)
        per_block = _mixer_macs(mixer, 16, 2, *size) + _mixer_macs(mixer, 16, 2, h1, w1)
        ours, haar = count_macs(_tiny(mixer, wavelet), (3, *size)), count_macs(_tiny("dwt", "haar"), (3, *size))
        assert ours == haar + 2 * per_block
    haar_flops = count_dwt_flops(_tiny(mixer, wavelet), (3, *size))
    assert (haar_flops > 0) == (mixer == "dwt" and wavelet == "haar")


@pytest.mark.parametrize(("mixer", "wavelet"), VARIANTS, ids=IDS)
def test_a_few_training_steps_lower_the_loss(mixer, wavelet):
    model = _tiny(mixer, wavelet, depth=1).train()
    x, y = torch.randn(16, 3, 11, 11), torch.randint(0, 3, (16,))
    random_bank = [b.clone() for n, b in model.named_buffers() if ".mixers." in n]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    for before, (_, after) in zip(random_bank, [(n, b) for n, b in model.named_buffers() if ".mixers." in n]):
        assert torch.equal(before, after)  # not trained
    for name, p in model.named_parameters():
        if ".mixers." in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("mixer", "wavelet"), VARIANTS, ids=IDS)
def test_save_load_round_trip_is_exact(mixer, wavelet, tmp_path):
    model = _tiny(mixer, wavelet).eval()
    for name, buf in model.named_buffers():
        if ".mixers." in name:
            buf.neg_()  # a reload that rebuilt the filter bank from the seed instead of reading it would differ
    save_pretrained(model, tmp_path / "m")
    loaded = from_pretrained(tmp_path / "m")
    assert (loaded.config["mixer"], loaded.config["wavelet"]) == (mixer, wavelet)
    x = torch.randn(2, 3, 13, 10)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_default_block_is_the_haar_dwt_with_no_new_state():
    model = WaveMix(num_classes=3, depth=1, final_dim=16, level=2)
    assert not any(".mixers." in k for k in model.state_dict())
    assert (model.config["mixer"], model.config["wavelet"]) == ("dwt", "haar")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(mode="foo"), "unknown boundary mode='foo'"),
        (dict(mixer="mlp"), "unknown mixer='mlp'"),
        (dict(wavelet="db99"), "unknown wavelet 'db99'"),
        (dict(wavelet="morl"), "unknown wavelet 'morl'"),  # continuous: no filter bank
        (dict(mixer="avgpool", wavelet="db2"), "takes only wavelet='haar'"),
    ],
)
def test_bad_options_fail_at_construction_in_one_line(kwargs, message):
    for build in (lambda: WaveMixBlock(16, **kwargs), lambda: WaveMix(final_dim=16, depth=1, **kwargs),
                  lambda: WaveMixSegmentation(final_dim=16, depth=1, **kwargs),
                  lambda: WaveMixSR(final_dim=16, depth=1, **kwargs)):  # fmt: skip
        with pytest.raises(ValueError, match=message) as err:
            build()
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("mixer", sorted(MIXERS))
def test_every_mixer_is_checked_and_takes_the_wavelets_it_says(mixer):
    """The variants above hold every mixer with Haar; a 2x2 mixer refuses db2, the others take it."""
    assert (mixer, "haar") in VARIANTS
    if mixer in HAAR_ONLY_MIXERS:
        with pytest.raises(ValueError, match=f"mixer='{mixer}' is a 2x2 operation: it takes only wavelet='haar'"):
            WaveMixBlock(16, mixer=mixer, wavelet="db2")
    else:
        assert (mixer, "db2") in VARIANTS
        WaveMixBlock(16, mixer=mixer, wavelet="db2")


@pytest.mark.parametrize(("mixer", "wavelet", "size", "warns"),
                         [("dwt", "haar", 8, False), ("dwt", "haar", 7, True), ("dwt", "db2", 8, True),
                          ("dwt", "db2", 24, False), ("conv", "haar", 7, True), ("conv", "db2", 8, True),
                          ("random", "db2", 8, True), ("random", "db2", 24, False), ("avgpool", "haar", 7, True),
                          ("fourier", "haar", 8, False)])  # fmt: skip
def test_level_beyond_the_input_size_warns_once(mixer, wavelet, size, warns):
    # Haar and the 2x2 mixers: 3 levels need 8 tokens; any mixer with db2's support (F=4): 24
    model = _tiny(mixer, wavelet, level=3).eval()
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        for _ in range(3):
            model(torch.randn(1, 3, size, size))
    messages = [str(w.message) for w in caught if "Level value" in str(w.message)]
    assert len(messages) == (1 if warns else 0), messages
