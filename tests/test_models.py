"""Invariants every registered variant must satisfy (timm-style suite), at CPU-fast sizes."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import wavemixer
from wavemixer import WaveMix, WaveMixBlock, WaveMixSegmentation, WaveMixSR, create_model, get_spec, list_models
from wavemixer.flops import count_dwt_flops, count_macs

# Every registered model is built on small inputs: level-4 models run levels past an 8x8 input on purpose
# (tests/test_mixers.py::test_level_beyond_the_input_size_warns_once checks the warning itself).
pytestmark = pytest.mark.filterwarnings("ignore:Level value of .* is too high:UserWarning")

ALL = list_models()
# Small stand-ins: one block, modest input; every other hyper-parameter as registered.
SMALL_INPUT = {"classification": (32, 32), "segmentation": (32, 48), "super_resolution": (12, 16)}


def small(name: str, **overrides) -> tuple[nn.Module, torch.Tensor]:
    spec = get_spec(name)
    model = create_model(name, depth=1, **overrides)
    x = torch.randn(2, spec.input_size[0], *SMALL_INPUT[spec.task])
    return model, x


def expected_shape(name: str, model: nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    task = get_spec(name).task
    if task == "classification":
        return (x.shape[0], model.num_classes)
    if task == "segmentation":
        return (x.shape[0], model.num_classes, *x.shape[-2:])
    return (x.shape[0], x.shape[1], x.shape[-2] * model.scale, x.shape[-1] * model.scale)


def test_registry_is_complete():
    assert len(ALL) >= 20
    for task in ("classification", "segmentation", "super_resolution"):
        assert list_models(task=task), task
    assert {
        "wavemix_lite_8_10_mnist",
        "wavemix_lite_8_5_fmnist",
        "wavemix_lite_32_7_cifar10_tiny",
        "wavemix_lite_64_6_cifar10",
        "wavemix_192_16",
        "wavemix_seg_256_16_l4",
        "wavemix_sr_144_4_x2",
    } <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_declared_params_and_macs_are_true(name):
    spec = get_spec(name)
    with torch.device("meta"):
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == spec.num_params
    macs = count_macs(model, spec.input_size) / 1e9
    shown = repr(spec.gmacs).replace(".", "").lstrip("0")  # the significant digits the table shows
    assert float(f"{macs:.{len(shown)}g}") == spec.gmacs, f"{name}: {macs} GMACs, registered {spec.gmacs}"


@pytest.mark.parametrize("name", ALL)
def test_forward_shape_and_finite(name):
    model, x = small(name)
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == expected_shape(name, model, x)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_backward_reaches_every_parameter(name):
    model, x = small(name)
    model.train()
    model(x).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("name", ALL)
def test_grad_checkpointing_same_output_grads_and_bn_stats(name):
    model, x = small(name, dropout=0.0)
    model.train()
    twin = copy.deepcopy(model)
    twin.set_grad_checkpointing(True)
    out, out_ckpt = model(x), twin(x)
    torch.testing.assert_close(out_ckpt, out, rtol=1e-4, atol=1e-5)
    out.square().mean().backward()
    out_ckpt.square().mean().backward()
    for (n, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=n)
    for (n, b), (_, c) in zip(model.named_buffers(), twin.named_buffers()):
        torch.testing.assert_close(c, b, msg=f"{n}: recomputation changed BatchNorm statistics")


def test_grad_checkpointing_keeps_dropout_masks():
    model = WaveMix(num_classes=4, depth=2, final_dim=16, level=2, dropout=0.5, stem="strided", stride=1)
    twin = copy.deepcopy(model)
    twin.set_grad_checkpointing()
    x = torch.randn(2, 3, 16, 16)
    torch.manual_seed(3)
    model(x).sum().backward()
    torch.manual_seed(3)
    twin(x).sum().backward()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_channels_last_equals_nchw(name):
    model, x = small(name)
    model.eval()
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["wavemix_lite_144_7_cifar10", "wavemix_192_16", "wavemix_seg_256_16_l4",
                                  "wavemix_sr_144_4_x4", "wavemix_lite_8_10_mnist"])  # fmt: skip
def test_bf16_autocast_forward_backward(name):
    model, x = small(name)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    out.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_whole_model_in_other_dtypes(dtype):
    model = WaveMix(num_classes=3, depth=1, final_dim=16, level=3).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        out = model.to(dtype)(x.to(dtype))
    assert out.dtype == dtype  # the same weights: the fp32 answer, to the dtype's precision
    torch.testing.assert_close(out.float(), expected, rtol=0, atol=1e-6 if dtype == torch.float64 else 2e-2)


@pytest.mark.parametrize("level", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(16, 16), (15, 22), (7, 9), (1, 3)])
def test_block_preserves_any_size(level, size):
    block = WaveMixBlock(16, level=level).eval()
    x = torch.randn(1, 16, *size)
    assert block(x).shape == x.shape


@pytest.mark.parametrize("size", [(37, 51), (64, 64), (33, 20)])
def test_dense_outputs_match_input_size(size):
    seg = WaveMixSegmentation(num_classes=5, depth=1, final_dim=16, level=2).eval()
    assert seg(torch.randn(1, 3, *size)).shape == (1, 5, *size)
    seg3 = WaveMixSegmentation(num_classes=5, depth=1, final_dim=16, level=1, stem="strided", stride=3).eval()
    assert seg3(torch.randn(1, 3, *size)).shape == (1, 5, *size)
    patch = WaveMixSegmentation(num_classes=5, depth=1, final_dim=16, level=1, stem="patchify", patch_size=4).eval()
    assert patch(torch.randn(1, 3, *size)).shape == (1, 5, *size)
    sr = WaveMixSR(scale=4, depth=1, final_dim=16).eval()
    assert sr(torch.randn(1, 3, *size)).shape == (1, 3, 4 * size[0], 4 * size[1])


def test_segmentation_encoder_loads_classifier_weights():
    cls = WaveMix(num_classes=10, depth=2, final_dim=16, level=2, stem="strided", stride=2)
    seg = WaveMixSegmentation(num_classes=4, depth=2, final_dim=16, level=2, stem="strided", stride=2)
    loaded = seg.load_encoder_state_dict(cls.state_dict())
    assert loaded and all(k.startswith(("stem.", "blocks.")) for k in loaded)
    torch.testing.assert_close(seg.blocks[1].levels[0].expand.weight, cls.blocks[1].levels[0].expand.weight)
    bigger = WaveMix(num_classes=10, depth=2, final_dim=32, level=2, stem="strided", stride=2)
    with pytest.raises(ValueError, match="final_dim/level/stem/in_chans must match"):
        seg.load_encoder_state_dict(bigger.state_dict())


def test_sr_bicubic_residual_starts_near_bicubic():
    sr = WaveMixSR(scale=2, depth=1, final_dim=16, bicubic_residual=True).eval()
    for p in sr.to_image.parameters():
        nn.init.zeros_(p)
    x = torch.rand(1, 3, 10, 12)
    bicubic = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(sr(x), bicubic)


# -- timm model API --------------------------------------------------------------------------------


def test_timm_api_contract():
    model = WaveMix(num_classes=7, depth=3, final_dim=32, level=2).eval()
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (2, model.num_features, 8, 8)
    assert model.forward_head(feats, pre_logits=True).shape == (2, model.head_hidden_size)
    torch.testing.assert_close(model.forward_head(feats), model(x))
    assert [f["reduction"] for f in model.feature_info] == [4, 4, 4]
    final, inter = model.forward_intermediates(x)
    torch.testing.assert_close(final, feats)
    assert len(inter) == 3 and all(t.shape == feats.shape for t in inter)
    assert len(model.forward_intermediates(x, indices=2, intermediates_only=True)) == 2
    nhwc = model.forward_intermediates(x, indices=[0], output_fmt="NHWC", intermediates_only=True)[0]
    assert nhwc.shape == (2, 8, 8, 32)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.get_classifier().out_features == 3
    model.reset_classifier(0)
    assert model(x).shape == (2, 32)
    model.reset_classifier(0, "")
    assert model(x).shape == (2, 32, 8, 8)
    assert model.prune_intermediate_layers(indices=[1]) == [1]
    assert len(model.blocks) == 2


def test_timm_create_model_uses_the_registry():
    timm = pytest.importorskip("timm")
    model = timm.create_model("wavemix_lite_32_7_cifar10_tiny", num_classes=4, pretrained=False)
    assert isinstance(model, WaveMix) and model.num_classes == 4
    assert timm.data.resolve_data_config(model=model)["input_size"] == (3, 32, 32)
    assert "wavemix_192_16" in timm.list_models("wavemix*")


# -- bad arguments and inputs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(level=0), "level must be an integer >= 1"),
        (dict(final_dim=18), "multiple of 4"),
        (dict(final_dim=20, level=2), "multiple of 8"),
        (dict(stem="pachify"), "unknown stem"),
        (dict(upsample="deconv"), "unknown upsample"),
        (dict(depth=0), "depth must be"),
        (dict(dropout=1.5), "dropout must be in"),
        (dict(upsample="nearest", ff_channel=64), "applies only to upsample='convtranspose'"),
        (dict(num_classes=-1), "num_classes must be"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WaveMix(**{"depth": 1, "final_dim": 16, **kwargs})


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        WaveMix(10)  # type: ignore[misc]


# The super-resolution model has no stem choice: its blocks run at the input resolution.
NOT_IN_SR = {"stem", "patch_size", "stride"}


@pytest.mark.parametrize("cls", [WaveMix, WaveMixSegmentation, WaveMixSR], ids=lambda c: c.__name__)
def test_every_constructor_argument_is_recorded_and_every_body_option_exposed(cls) -> None:
    """``config`` (what config.json and ``from_pretrained`` rebuild from) names every constructor argument with
    the value given, and each model class takes every option of the shared body: an option added to the body
    but missed in one class, or not recorded, would silently come back as its default after a save and load."""
    import inspect

    from wavemixer.body import WaveMixBody

    signature = set(inspect.signature(cls).parameters)
    body = set(inspect.signature(WaveMixBody.__init__).parameters) - {"self"}
    assert body - signature == (NOT_IN_SR if cls is WaveMixSR else set())
    given = {"depth": 1, "final_dim": 16, "level": 1, "ff_channel": 8, "mult": 1, "dropout": 0.25}
    model = cls(**given)
    assert set(model.config) == signature  # defaults may be recorded resolved (decoder_dims=None -> [8, 4])
    assert {k: model.config[k] for k in given} == given
    assert cls(**model.config).config == model.config


def test_bad_inputs_name_the_rule():
    model = WaveMix(num_classes=3, depth=1, final_dim=16, level=1, patch_size=4)
    with pytest.raises(ValueError, match="3-channel images"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="smaller than the patchify stem's patch"):
        model(torch.randn(1, 3, 2, 32))
    with pytest.raises(ValueError, match="4-D image batch"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="expects 16 input channels"):
        WaveMixBlock(16)(torch.randn(1, 8, 8, 8))
    with pytest.raises(ValueError, match="power of two"):
        WaveMixSR(scale=3)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("wavemix_does_not_exist")
    with pytest.raises(TypeError, match="unknown argument"):
        create_model("wavemix_192_16", embed_dim=3)


def test_upsampler_variants_have_the_published_parameter_counts():
    # reference README §E: only the ConvTranspose vs x2-upsampling choice differs
    counts = {}
    for up in ("convtranspose", "nearest", "bilinear", "pixelshuffle"):
        model = WaveMix(num_classes=10, depth=10, final_dim=8, level=1, stem="strided", stride=1, in_chans=1,
                        upsample=up, mult=4 if up == "pixelshuffle" else 2)  # fmt: skip
        counts[up] = sum(p.numel() for p in model.parameters())
    assert counts["convtranspose"] == 13_886 and counts["nearest"] == counts["bilinear"] == 3_566
    # V3 block of width 8, mult 4: reduction 8 -> 2 (18), expand 8 -> 32 (288), PixelShuffle(2) to 8 channels,
    # a 3x3 conv 8 -> 8 (584), BatchNorm (16); stem and head as in the 3,566-parameter model (426)
    assert counts["pixelshuffle"] == 10 * (18 + 288 + 584 + 16) + 3_566 - 10 * 314 == 9_486


def test_dwt_flops_are_counted_per_level():
    model = WaveMix(num_classes=2, depth=1, final_dim=16, level=2, stem="strided", stride=1)
    # 16 channels -> 4 after reduction; level 1 on 32x32 gives 16x16 patches, level 2 8x8
    assert count_dwt_flops(model, (3, 32, 32)) == 12 * 4 * (16 * 16 + 8 * 8)


def test_public_api_is_exported():
    for name in ("WaveMix", "WaveMixSegmentation", "WaveMixSR", "create_model", "list_models", "dwt2", "wavedec2"):
        assert hasattr(wavemixer, name)
