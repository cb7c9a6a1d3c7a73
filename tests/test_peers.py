"""Peer architectures at a parameter budget: library classes, widths solved to the budget."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("timm")

from wavemixer.bench.peers import PEER_FAMILIES, SEGMENTATION_PEER_FAMILIES, PeerSpec, count_params, solve_peer

BUDGETS = [(40_000, 32), (500_000, 32)]


@pytest.mark.parametrize("family", sorted(PEER_FAMILIES))
@pytest.mark.parametrize(("budget", "img_size"), BUDGETS)
def test_classification_peer_meets_budget(family: str, budget: int, img_size: int) -> None:
    spec, params = solve_peer(family, budget, img_size=img_size)
    assert abs(params / budget - 1) < 0.1, (spec, params)
    model = spec.build().eval()
    assert count_params(model) == params  # the meta-device count is the real one
    with torch.no_grad():
        assert model(torch.randn(2, 3, img_size, img_size)).shape == (2, 10)


def test_convmixer_count_by_hand() -> None:
    # ConvMixer(dim, depth, kernel 5, patch 2): patch embed + BN, per block depthwise + BN + pointwise + BN, head
    spec = PeerSpec("convmixer", width=84, depth=4, num_classes=10, in_chans=3, img_size=32)
    d, k, p = 84, 5, 2
    expected = (3 * d * p * p + d) + 2 * d + 4 * ((d * k * k + d) + 2 * d + (d * d + d) + 2 * d) + (d * 10 + 10)
    assert count_params(spec.build()) == expected


def test_solver_picks_the_closest_width() -> None:
    spec, params = solve_peer("resnet", 500_000)
    step = PEER_FAMILIES["resnet"].step
    neighbours = [
        count_params(PeerSpec("resnet", spec.width + dw, spec.depth, 10, 3, 32).build(device="meta"))
        for dw in (-step, step)
    ]
    assert all(abs(params - 500_000) <= abs(n - 500_000) for n in neighbours)


@pytest.mark.parametrize("family", sorted(SEGMENTATION_PEER_FAMILIES))
def test_segmentation_peer_output_at_input_size(family: str) -> None:
    spec, params = solve_peer(family, 2_900_000, num_classes=12, img_size=180)
    assert abs(params / 2_900_000 - 1) < 0.15
    with torch.no_grad():
        assert spec.build().eval()(torch.randn(1, 3, 45, 61)).shape == (1, 12, 45, 61)


@pytest.mark.parametrize("family", sorted({**PEER_FAMILIES, **SEGMENTATION_PEER_FAMILIES}))
def test_peer_takes_one_channel_inputs(family: str) -> None:
    # the built-in data set is grayscale: every family's first layer must take in_chans=1, not only RGB
    segmentation = family in SEGMENTATION_PEER_FAMILIES
    size = 64 if segmentation else 32
    spec, _ = solve_peer(family, 500_000 if segmentation else 40_000, in_chans=1, img_size=size)
    expected = (2, 10, size, size) if segmentation else (2, 10)
    with torch.no_grad():
        assert spec.build().eval()(torch.randn(2, 1, size, size)).shape == expected


def test_unknown_family_and_bad_budget() -> None:
    with pytest.raises(ValueError, match="unknown peer family 'resnett'"):
        solve_peer("resnett", 40_000)
    with pytest.raises(ValueError, match="params must be a positive integer"):
        solve_peer("resnet", 0)


@pytest.mark.parametrize(
    ("family", "depths"),
    [("resnet", (1, 2, 2)), ("convnext", (1, 2, 2)), ("poolformer", (1, 2, 2)), ("vit", (4, 8, 8)),
     ("mlp_mixer", (4, 8, 8)), ("convmixer", (4, 8, 8)), ("unet", (1, 1, 1)), ("lraspp_mobilenet_v3", (1, 1, 1))],
)  # fmt: skip
def test_depth_follows_the_budget_scale(family: str, depths: tuple[int, int, int]) -> None:
    from wavemixer.bench.peers import peer_depth

    assert tuple(peer_depth(family, n) for n in (40_000, 500_000, 3_000_000)) == depths
    assert (peer_depth(family, 199_999), peer_depth(family, 200_000)) == depths[:2]


def test_fixed_depth_family_refuses_a_depth() -> None:
    from wavemixer.bench.peers import create_peer

    for args in ({"params": 3_000_000, "depth": 3}, {"width": 100, "depth": 3}):
        with pytest.raises(ValueError, match=r"^--model peer:lraspp_mobilenet_v3 has the depth its architecture "
                                             r"fixes; --model-arg depth does not apply, got 3$"):  # fmt: skip
            create_peer("peer:lraspp_mobilenet_v3", num_classes=12, in_chans=3, img_size=64, model_args=args,
                        task="segmentation")  # fmt: skip
    with pytest.raises(ValueError, match="'deeplabv3_mobilenet_v3' has the depth its architecture fixes"):
        solve_peer("deeplabv3_mobilenet_v3", 3_000_000, depth=2)
    assert solve_peer("unet", 500_000, num_classes=12, img_size=64, depth=2)[0].depth == 2  # the U-Net's is free


def test_unet_levels_follow_the_design() -> None:
    """smp's U-Net at the CamVid budget and crop: five levels, the deepest at 1/32 (4x4 maps), or the original
    U-Net's four, the deepest at 1/16 (8x8), each stage twice as wide at the same width (no fifth stage built)."""
    from wavemixer.bench.peers import create_peer

    shapes = {}
    for design in ("imagenet", "small-input"):
        spec, params = solve_peer("unet", 881_867, num_classes=11, img_size=128, design=design)
        model = create_peer("peer:unet", task="segmentation", num_classes=11, in_chans=3, img_size=128,
                            model_args={"params": 881_867, "design": design})  # fmt: skip
        assert spec.width == 176 and count_params(model) == params  # within 10 % of the budget
        unet = model.model
        shapes[design] = [tuple(f.shape[1:]) for f in unet.encoder(torch.zeros(1, 3, 128, 128))[1:]]
        assert unet(torch.zeros(1, 3, 128, 128)).shape == (1, 11, 128, 128)
        assert any(".layer4." in n for n, _ in unet.named_parameters()) is (design == "imagenet")
    assert shapes["imagenet"] == [(22, 64, 64), (22, 32, 32), (44, 16, 16), (88, 8, 8), (176, 4, 4)]
    assert shapes["small-input"] == [(22, 64, 64), (44, 32, 32), (88, 16, 16), (176, 8, 8)]


def test_peer_model_trains_saves_and_reloads_exactly(tmp_path) -> None:
    from wavemixer import from_pretrained, save_pretrained
    from wavemixer.bench.peers import create_peer

    model = create_peer("peer:vit", num_classes=4, in_chans=1, img_size=16, model_args={"params": 20_000})
    assert abs(count_params(model) / 20_000 - 1) < 0.15 and model.config["family"] == "vit"
    x = torch.randn(3, 1, 16, 16)
    save_pretrained(model, tmp_path / "m", model_name="peer:vit")
    loaded = from_pretrained(tmp_path / "m")
    assert type(loaded).__name__ == "PeerModel" and loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_peer_model_arguments_are_checked() -> None:
    from wavemixer.bench.peers import create_peer

    with pytest.raises(ValueError, match="exactly one of --model-arg params=N"):
        create_peer("peer:resnet", num_classes=10, in_chans=3, img_size=32, model_args={})
    with pytest.raises(
        ValueError, match=r"takes --model-arg params=N, or width=W and depth=D, and design=; got \['mixer'\]"
    ):
        create_peer("peer:resnet", num_classes=10, in_chans=3, img_size=32, model_args={"mixer": "dwt"})
    with pytest.raises(ValueError, match=r"--model peer:resnett: unknown peer family 'resnett'; --task classification "
                       r"takes peer:convmixer, peer:convnext, .*peer:vit$"):  # fmt: skip
        create_peer("peer:resnett", num_classes=10, in_chans=3, img_size=32, model_args={"width": 8})
    for budget in (0, 10**12, "abc"):  # refused before any weight is allocated
        with pytest.raises(ValueError, match=rf"--model-arg params must be a positive integer of at most "
                                             rf"1,000,000,000 .*got {budget!r}"):  # fmt: skip
            create_peer("peer:resnet", num_classes=10, in_chans=3, img_size=32, model_args={"params": budget})
    with pytest.raises(ValueError, match=r"--model-arg width=100000 depth=\d+ gives [\d,]+ parameters, more than"):
        create_peer("peer:resnet", num_classes=10, in_chans=3, img_size=32, model_args={"width": 100_000})
    with pytest.raises(ValueError, match=r"design must be one of \['imagenet', 'small-input'\], got 'cifar'"):
        create_peer("peer:resnet", num_classes=10, in_chans=3, img_size=32, model_args={"width": 8, "design": "cifar"})


def test_peer_without_its_library_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys) -> None:
    """Without timm, training a timm peer ends in one line naming the extra (exit 2), and writes nothing."""
    import importlib

    from wavemixer import optional_deps
    from wavemixer.cli import main

    real = importlib.import_module

    def no_timm(name: str, *args, **kwargs):
        if name.split(".")[0] == "timm":
            raise ModuleNotFoundError(f"No module named {name!r}", name="timm")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(optional_deps.importlib, "import_module", no_timm)
    out = tmp_path / "run"
    argv = ["train", "--model", "peer:convmixer", "--model-arg", "params=3566", "--epochs", "1", "--output", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    expected = 'a peer model needs timm, which is not installed: pip install "wavemixer[timm]"'
    assert err == f"wavemixer train: error: {expected}"
    assert not out.exists()


# --- every contender sensible at its input size -------------------------------------------------------------
from wavemixer.bench.conv_audit import audit_convolutions  # noqa: E402


@pytest.mark.parametrize("family", sorted(PEER_FAMILIES))
@pytest.mark.parametrize("budget", [37_058, 520_106])
@pytest.mark.parametrize("img_size", [32, 64, 128])
def test_peer_uses_its_parameters_at_the_input_size(family: str, budget: int, img_size: int) -> None:
    """No more than 5 % of a peer's parameters in kernel taps that see only zero padding, no convolution on a
    map smaller than 4x4 (the default design for the size: small-input below 128 px, the library's above)."""
    spec, _ = solve_peer(family, budget, img_size=img_size)
    audit = audit_convolutions(spec.build(), (3, img_size, img_size))
    assert audit.dead_fraction <= 0.05, (spec, audit.dead_fraction)
    assert not audit.small_maps(4), [(c.name, c.in_hw, c.out_hw) for c in audit.small_maps(4)]


def test_imagenet_design_at_32px_wastes_what_the_audit_says() -> None:
    """The audit against hand-derived numbers: timm's ImageNet ResNet at 32 px ends on 1x1 maps; the small-input
    ResNet keeps its last stage at 4x4 and its stem at full resolution."""
    for budget, dead in ((37_058, 0.37), (520_106, 0.60)):  # the figures docs/claims.md states
        spec, _ = solve_peer("resnet", budget, img_size=32, design="imagenet")
        audit = audit_convolutions(spec.build(), (3, 32, 32))
        assert audit.smallest_map == 1 and round(audit.dead_fraction, 2) == dead
    small = solve_peer("resnet", 37_058, img_size=32)[0]
    assert small.design == "small-input"
    model = small.build()
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    feats = model.forward_intermediates(torch.randn(1, 3, 32, 32), intermediates_only=True)
    assert [f.shape[-1] for f in feats] == [32, 32, 16, 8, 4]  # stem, then stages at 1, 1/2, 1/4, 1/8


@pytest.mark.parametrize(
    ("family", "sides"),
    [("convnext", [32, 16, 8, 4]), ("poolformer", [16, 8, 4])],
)
def test_small_input_stage_resolutions(family: str, sides: list[int]) -> None:
    spec, _ = solve_peer(family, 37_058, img_size=32)
    feats = spec.build().forward_intermediates(torch.randn(1, 3, 32, 32), intermediates_only=True)
    assert [f.shape[-1] for f in feats] == sides


def test_saved_imagenet_peer_rebuilds_as_saved() -> None:
    """Configs saved before ``design`` existed have no such key: they rebuild the library's ImageNet design."""
    from wavemixer.bench.peers import PeerModel

    old = dict(family="resnet", width=36, depth=1, num_classes=10, in_chans=3, img_size=32)
    model = PeerModel(**old)
    assert model.config["design"] == "imagenet" and model.model.conv1.kernel_size == (7, 7)


def test_dead_taps_of_a_single_conv_by_hand() -> None:
    """A 3x3 conv (padding 1) on a 1x1 map uses only its centre tap: 8/9 of its weights are dead; on a 2x2 map
    every tap reads some pixel. A 7x7 conv (padding 3) on a 2x2 map reads pixels only through taps 2..4 of
    each axis (offsets -1..+1)."""
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=False)
    assert audit_convolutions(conv, (4, 1, 1)).dead_params == 6 * 4 * 8
    assert audit_convolutions(conv, (4, 2, 2)).dead_params == 0
    big = torch.nn.Conv2d(1, 1, 7, padding=3, bias=False)
    assert audit_convolutions(big, (1, 2, 2)).dead_params == 49 - 9  # rows/cols 2, 3, 4 of the kernel live
    strided = torch.nn.Conv2d(1, 1, 3, stride=2, padding=1, bias=False)
    assert audit_convolutions(strided, (1, 2, 2)).dead_params == 9 - 4  # one output: taps 1, 2 per axis
    up = torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)
    assert audit_convolutions(up, (1, 1, 1)).dead_params == 16 - 4  # 1 -> 2 pixels: taps 1, 2 per axis
    circular = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=False)
    assert audit_convolutions(circular, (1, 1, 1)).dead_params == 0  # padding with real pixels
