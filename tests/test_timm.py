"""wavemixer models as timm models: cfgs, builder, features, pretrained loading; same cfg from every entry point."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import wavemixer
from wavemixer.hub import WEIGHTS_NAME, from_pretrained, save_pretrained
from wavemixer.registry import names_with_weights, packaged_weights_dir

timm = pytest.importorskip("timm")
from timm.data import resolve_model_data_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MNIST = "wavemix_lite_8_10_mnist"
CIFAR_TINY = "wavemix_lite_32_7_cifar10_tiny"
# as the packaged MNIST weights were trained (src/wavemixer/weights/*/config.json: 1x28x28, bilinear-antialias
# resize of the full frame, MNIST mean/std)
MNIST_DATA_CONFIG = dict(
    input_size=(1, 28, 28), interpolation="bilinear", mean=(0.1307,), std=(0.3081,), crop_pct=1.0, crop_mode="center"
)


def _packaged_state(name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(packaged_weights_dir(name) / WEIGHTS_NAME)


def test_packaged_weights_are_listed_as_pretrained():
    packaged = [
        "wavemix_lite_16_7_s2_cifar10",
        "wavemix_lite_32_7_cifar10_tiny",
        "wavemix_lite_8_10_mnist",
        "wavemix_lite_8_5_fmnist",
    ]  # fmt: skip  (the folders under src/wavemixer/weights)
    assert sorted(timm.list_models("wavemix*", pretrained=True)) == sorted(names_with_weights()) == packaged
    cfg = timm.models.get_pretrained_cfg(MNIST)
    assert cfg is not None and cfg.file == str(packaged_weights_dir(MNIST) / WEIGHTS_NAME)
    # stride-1 stem: blocks run at 28x28
    assert (cfg.num_classes, cfg.pool_size, cfg.first_conv, cfg.classifier) == (10, (28, 28), "stem.0", "head")
    assert cfg.license == "mit" and list(cfg.label_names) == [str(i) for i in range(10)]
    # 4x4 patchify stem at 224 px; two stride-2 convs at 256 px (reference doc: 56x56 and 64x64 tokens)
    assert timm.models.get_pretrained_cfg("wavemix_192_16").pool_size == (56, 56)
    assert timm.models.get_pretrained_cfg("wavemix_256_16_l4").pool_size == (64, 64)


def test_every_entry_point_carries_the_cfg_the_weights_were_trained_with():
    hub_model = torch.hub.load(str(ROOT), MNIST, source="local", pretrained=True)
    models = {
        "timm": timm.create_model(MNIST, pretrained=True),
        "create_model": wavemixer.create_model(MNIST, pretrained=True),
        "create_model (random init)": wavemixer.create_model(MNIST),
        "from_pretrained": from_pretrained(MNIST),
        "torch.hub": hub_model,
    }
    for where, model in models.items():
        assert resolve_model_data_config(model) == MNIST_DATA_CONFIG, where
    # the unpooled feature map has the cfg's pool_size
    model = models["create_model"].eval()
    assert model.forward_features(torch.zeros(1, 1, 28, 28)).shape[-2:] == model.pretrained_cfg["pool_size"]


def test_train_eval_mode_matches_timm():
    assert timm.create_model(MNIST, pretrained=True).training
    assert wavemixer.create_model(MNIST, pretrained=True).training
    assert not from_pretrained(MNIST).training  # Hugging Face style loaders return eval mode


def test_pretrained_weights_load_through_timm():
    model = timm.create_model(MNIST, pretrained=True)
    for key, value in _packaged_state(MNIST).items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("build", ["timm", "wavemixer"])
def test_pretrained_with_in_chans_adapts_the_stem(build):
    create = timm.create_model if build == "timm" else wavemixer.create_model
    w = _packaged_state(CIFAR_TINY)["stem.0.weight"]  # (16, 3, 3, 3)
    gray = create(CIFAR_TINY, pretrained=True, in_chans=1)
    torch.testing.assert_close(gray.stem[0].weight, w.sum(dim=1, keepdim=True))  # timm: sum for 1 channel
    five = create(CIFAR_TINY, pretrained=True, in_chans=5, num_classes=4)
    expected = torch.cat([w, w[:, :2]], dim=1) * (3 / 5)  # timm: repeat channels, rescale by 3/5
    torch.testing.assert_close(five.stem[0].weight, expected)
    assert five.head.out_features == 4 and resolve_model_data_config(five)["input_size"] == (5, 32, 32)
    torch.testing.assert_close(five.blocks[0].levels[0].norm.weight, _packaged_state(CIFAR_TINY)[
        "blocks.0.levels.0.norm.weight"])  # fmt: skip


def test_pretrained_cfg_overlay_file_is_honoured(tmp_path):
    other = wavemixer.create_model(MNIST)  # random weights, saved elsewhere
    save_pretrained(other, tmp_path / "other", model_name=MNIST)
    model = timm.create_model(
        MNIST, pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / "other" / WEIGHTS_NAME))
    )
    torch.testing.assert_close(model.stem[0].weight, other.stem[0].weight, rtol=0, atol=0)


@pytest.mark.parametrize("name", names_with_weights())
def test_packaged_config_cites_the_registry_source(name):
    """A packaged folder's embedded timm config is written once, at packaging: re-package when the registry
    entry's figure or source changes, or the shipped config cites a stale result. (Folders packaged before
    configs embedded a ``pretrained_cfg`` have none; timm builds its own from the registry.)"""
    from wavemixer.hub import load_config
    from wavemixer.registry import get_spec

    embedded = load_config(packaged_weights_dir(name)).get("pretrained_cfg")
    assert embedded is None or embedded["notes"][0] == get_spec(name).source


def test_features_only_with_out_indices():
    model = timm.create_model(MNIST, pretrained=True, features_only=True, out_indices=(1, 4, 9)).eval()
    assert model.feature_info.channels() == [8, 8, 8] and model.feature_info.reduction() == [1, 1, 1]
    x = torch.randn(2, 1, 28, 28)
    full = wavemixer.create_model(MNIST, pretrained=True).eval()
    # the residual streams after blocks 1, 4 and 9, seen by hooks on the plain model (a block returns its branch)
    expected: list[torch.Tensor] = []
    handles = [full.blocks[i].register_forward_hook(lambda m, a, out: expected.append(a[0] + out)) for i in (1, 4, 9)]
    with torch.no_grad():
        full(x)
    for h in handles:
        h.remove()
    feats = model(x)
    assert [tuple(f.shape) for f in feats] == [(2, 8, 28, 28)] * 3
    for got, want in zip(feats, expected, strict=True):
        torch.testing.assert_close(got, want)
    default = timm.create_model(MNIST, features_only=True)
    assert [i["module"] for i in default.feature_info.get_dicts()] == ["blocks.7", "blocks.8", "blocks.9"]


def test_unknown_arguments_raise_type_error():
    with pytest.raises(TypeError, match="unknown argument"):
        timm.create_model(MNIST, not_a_model_arg=1)


def test_models_build_on_the_requested_device_and_dtype():
    model = timm.create_model(MNIST, device="meta", dtype=torch.float64)
    assert {(p.device.type, p.dtype) for p in model.parameters()} == {("meta", torch.float64)}
    model.reset_classifier(3)  # a new head follows the model (timm's contract)
    assert (model.head.weight.device.type, model.head.weight.dtype) == ("meta", torch.float64)


def test_segmentation_and_super_resolution_carry_cfgs_but_stay_out_of_timm():
    seg = wavemixer.create_model("wavemix_seg_64_6_l2_camvid")
    assert seg.pretrained_cfg["input_size"] == (3, 180, 240) and seg.pretrained_cfg["num_classes"] == 11
    sr = torch.hub.load(str(ROOT), "wavemix_sr_64_4_x2_residual", source="local")
    assert sr.pretrained_cfg["input_size"] == (3, 90, 120) and sr.pretrained_cfg["mean"] == (0.0,) * 3
    # timm's model contract (and test suite) is that of a classifier with a pooled head
    assert not timm.list_models("wavemix_seg*") and not timm.list_models("wavemix_sr*")


def test_registry_does_not_import_the_hub_module():
    tree = ast.parse((ROOT / "src" / "wavemixer" / "registry.py").read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not {m for m in imported if m.split(".")[-1] in ("hub", "factory", "timm_models")}, imported
