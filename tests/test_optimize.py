"""The eval-time path computes the plain model's function; gradient checkpointing keeps the gradients."""

from __future__ import annotations

import copy
import glob

import pytest
import torch
from torch import nn

from wavemixer import create_model
from wavemixer.blocks import UPSAMPLERS
from wavemixer.optimize import export_onnx, fold_batchnorm, optimize_for_inference
from wavemixer.reference import from_reference

from .conftest import GOLDEN_DIR

# Folding BN reorders fp32 roundings only: outputs agree to 1e-5 relative to their magnitude.
RTOL = 1e-5


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so that folding is actually exercised."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(1 + 0.3 * torch.randn(n, generator=g))
            m.bias.data.copy_(0.3 * torch.randn(n, generator=g))
    return model.eval()


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = b.abs().max().item()
    assert (a - b).abs().max().item() <= RTOL * max(scale, 1.0)


def test_every_reference_golden_is_found() -> None:
    """The goldens below are found by a pattern: an empty match would test nothing (4 + 4 + 4 families' files)."""
    assert len(glob.glob(str(GOLDEN_DIR / "reference_*.pt"))) == 12


@pytest.mark.parametrize("path", sorted(glob.glob(str(GOLDEN_DIR / "reference_*.pt"))), ids=lambda p: p.split("/")[-1])
@pytest.mark.parametrize("channels_last", [False, True])
def test_optimized_matches_reference_goldens(path: str, channels_last: bool) -> None:
    record = torch.load(path, weights_only=True)
    model = from_reference(record["state_dict"], task=record["task"], **record["kwargs"]).eval()
    fast = optimize_for_inference(model, channels_last=channels_last)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.blocks.modules())
    with torch.no_grad():
        _close(fast(record["input"]), record["output"])


@pytest.mark.parametrize("upsample", sorted(UPSAMPLERS))
@pytest.mark.parametrize("level", [1, 3])
def test_fold_every_upsampler(upsample: str, level: int) -> None:
    """Every upsampler of the block (a new one too) has its BatchNorm folded, and the outputs stay the same."""
    model = _randomise_bn(
        create_model(
            "wavemix_lite_64_6_cifar10", depth=2, final_dim=32, level=level, upsample=upsample, ff_channel=None
        )
    )
    x = torch.randn(2, 3, 19, 21)  # odd size: crops and boundary extension are part of the function
    with torch.no_grad():
        expected = model(x)
        fast = optimize_for_inference(model)
        _close(fast(x), expected)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.blocks.modules()), "a block's BatchNorm not folded"
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the original model must stay untouched"


def test_fold_counts_and_bf16_copy() -> None:
    model = _randomise_bn(create_model("wavemix_192_16_tinyimagenet", depth=2, final_dim=32, num_classes=5))
    folded = optimize_for_inference(model)
    assert fold_batchnorm(folded) == 0  # already folded
    assert fold_batchnorm(_randomise_bn(create_model("wavemix_192_16_tinyimagenet", depth=2, final_dim=32))) == 6
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        low = optimize_for_inference(model, dtype=torch.bfloat16)(x.bfloat16())
        assert low.dtype == torch.bfloat16
        plain = copy.deepcopy(model).bfloat16()(x.bfloat16())
    # bf16's own rounding decides the error, and it depends on the CPU's kernels (within 0.01 + 2 % on AMD Zen 4,
    # 0.02-0.04 on Sapphire Rapids, logits up to 0.5 here): the folded copy must be as close as the unfolded model
    # cast to bf16 (ratio 0.96-1.09 over six seeds there); a fold that loses one BatchNorm's mean is off by 0.11.
    error = (low.float() - expected).abs().max().item()
    assert error <= 1.5 * (plain.float() - expected).abs().max().item() + 1e-3


def test_compiled_eval_path_matches() -> None:
    model = _randomise_bn(create_model("wavemix_lite_64_6_cifar10", depth=1, final_dim=16))
    x = torch.randn(2, 3, 16, 16)
    fast = optimize_for_inference(model, compile=True)
    with torch.no_grad():
        _close(fast(x), model(x))


def test_export_onnx_runs_in_onnxruntime(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = _randomise_bn(create_model("wavemix_lite_64_6_cifar10", depth=2, final_dim=16, level=2))
    path = export_onnx(model, tmp_path / "m.onnx", (3, 16, 16))
    x = torch.randn(3, 3, 16, 16)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        _close(torch.from_numpy(out), model(x))


@pytest.mark.parametrize("level", [1, 3])
def test_gradient_checkpointing_same_gradients(level: int) -> None:
    """Same loss, parameter gradients and BatchNorm running statistics with and without checkpointing."""
    torch.manual_seed(0)
    plain = create_model("wavemix_lite_64_6_cifar10", depth=3, final_dim=32, level=level, dropout=0.3).train()
    ckpt = create_model("wavemix_lite_64_6_cifar10", depth=3, final_dim=32, level=level, dropout=0.3).train()
    ckpt.load_state_dict(plain.state_dict())
    ckpt.set_grad_checkpointing(True)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    losses = []
    for model in (plain, ckpt):
        torch.manual_seed(123)  # dropout masks: checkpoint replays the RNG state on recomputation
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=0)
    grads = dict(ckpt.named_parameters())
    for name, p in plain.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-5, atol=1e-6, msg=name)
    buffers = dict(ckpt.named_buffers())
    for name, b in plain.named_buffers():
        torch.testing.assert_close(buffers[name], b, rtol=1e-6, atol=1e-7, msg=name)
