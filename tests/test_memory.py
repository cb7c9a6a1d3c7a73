"""``set_memory_efficient``: fewer saved activations, the same outputs, gradients and BatchNorm statistics."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from wavemixer import WaveMix, WaveMixSegmentation, WaveMixSR
from wavemixer.memory import ResidualBatchNorm

# fp32 recomputation reorders roundings only; compared relative to the largest gradient of the model.
RTOL = 1e-5


def _models() -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    common = dict(final_dim=16, depth=3, mult=2, dropout=0.3)
    return [
        ("cls_l1_convt", WaveMix(num_classes=5, level=1, stem="strided", stride=1, **common), (3, 16, 16)),
        (
            "cls_l1_bilinear",
            WaveMix(num_classes=5, level=1, upsample="bilinear", stem="strided", stride=1, in_chans=1, **common),
            (1, 12, 12),
        ),
        ("cls_l3_patchify", WaveMix(num_classes=5, level=3, patch_size=2, **common), (3, 32, 32)),
        ("seg_l2", WaveMixSegmentation(num_classes=4, level=2, stem="strided", stride=2, **common), (3, 32, 32)),
        ("sr_l2", WaveMixSR(scale=2, level=2, final_dim=16, depth=2, dropout=0.3), (3, 16, 16)),
    ]


def _randomise_affine(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.copy_(1 + 0.5 * torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(0.5 * torch.randn(m.num_features, generator=g))


def _train_step(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(7)  # the same dropout masks on both sides
    out = model(x)
    out.float().square().mean().backward()
    return out.detach()


def _assert_same_training_result(plain: nn.Module, out_plain: torch.Tensor, other: nn.Module, out_other) -> None:
    """Outputs, gradients (relative to the largest) and BatchNorm buffers of one step agree."""
    torch.testing.assert_close(out_other, out_plain, rtol=0, atol=1e-6)
    scale = max(p.grad.abs().max().item() for p in plain.parameters())
    for (name, p), q in zip(plain.named_parameters(), other.parameters()):
        assert (p.grad - q.grad).abs().max().item() <= RTOL * scale, name
    for (name, a), b in zip(plain.named_buffers(), other.buffers()):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize("case", _models(), ids=lambda c: c[0])
def test_same_outputs_gradients_and_running_stats(case) -> None:
    _, plain, shape = case
    _randomise_affine(plain)
    lean = copy.deepcopy(plain)
    lean.set_memory_efficient(True)
    plain.train(), lean.train()
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(0))
    out_plain, out_lean = _train_step(plain, x), _train_step(lean, x)
    assert lean._invertible_norms  # the BatchNorm input really was rebuilt, not the fallback
    _assert_same_training_result(plain, out_plain, lean, out_lean)


def _saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for backward during one forward."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(n for ptr, n in storages.items() if ptr not in params)


def test_keeps_far_fewer_activations() -> None:
    torch.manual_seed(0)
    model = WaveMix(num_classes=10, final_dim=32, depth=6, level=1, stem="strided", stride=1, dropout=0.2).train()
    x = torch.randn(8, 3, 32, 32)
    plain = _saved_bytes(model, x)
    model.set_memory_efficient(True)
    lean = _saved_bytes(model, x)
    # Per block the plain path keeps about 4 maps of C x H x W (block input, MLP interior, BN input),
    # the lean one about 1.5: hand count in wavemixer.memory. Demand at least a 40 % cut.
    assert lean < 0.6 * plain, (lean, plain)


def test_falls_back_when_a_gamma_is_near_zero() -> None:
    torch.manual_seed(0)
    plain = WaveMix(num_classes=3, final_dim=16, depth=2, level=1, stem="strided", stride=1).train()
    with torch.no_grad():
        plain.blocks[1].levels[0].norm.weight[3] = 0.0  # z cannot be rebuilt from (out - x) / gamma
    lean = copy.deepcopy(plain)
    lean.set_memory_efficient(True)
    x = torch.randn(2, 3, 8, 8)
    _train_step(plain, x), _train_step(lean, x)
    assert not lean._invertible_norms
    for p, q in zip(plain.parameters(), lean.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6)


def test_odd_sizes_bf16_autocast_and_eval_still_work() -> None:
    torch.manual_seed(0)
    model = WaveMix(num_classes=3, final_dim=16, depth=2, level=2, stem="strided", stride=1, dropout=0.1)
    reference = copy.deepcopy(model)
    model.set_memory_efficient(True)
    x = torch.randn(2, 3, 13, 11)
    torch.testing.assert_close(_train_step(model, x), _train_step(reference, x))  # crop: ordinary BN path
    low, low_reference = copy.deepcopy(model), copy.deepcopy(reference)  # one bf16 step each: the same result
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, expected = _train_step(low, x), _train_step(low_reference, x)
    torch.testing.assert_close(out.float(), expected.float(), rtol=2e-2, atol=2e-2)
    scale = max(r.grad.abs().max().item() for r in low_reference.parameters())
    for p, q in zip(low.parameters(), low_reference.parameters(), strict=True):
        assert (p.grad - q.grad).abs().max().item() <= 2e-2 * scale
    model.eval()
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_residual_batchnorm_gradcheck() -> None:
    g = torch.Generator().manual_seed(0)
    x, z = (torch.randn(3, 4, 5, 5, dtype=torch.double, generator=g).requires_grad_() for _ in range(2))
    weight = (torch.rand(4, dtype=torch.double, generator=g) + 0.5).requires_grad_()
    bias = torch.randn(4, dtype=torch.double, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: ResidualBatchNorm.apply(*a, None, None, 0.1, 1e-5), (x, z, weight, bias))


@pytest.mark.parametrize("case", _models()[:3], ids=lambda c: c[0])
def test_with_gradient_checkpointing_same_gradients_and_less_memory(case) -> None:
    """Both switches together (the bench's ``ckpt+lowmem``): the MLP interior is recomputed inside each
    block's recomputation, stem included; results equal the plain path and the peak drops below ``ckpt``."""
    from wavemixer.bench.worker import _allocator_peak_mb

    _, plain, shape = case
    _randomise_affine(plain)
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    both = copy.deepcopy(ckpt)
    both.set_memory_efficient(True)
    x = torch.randn(8, *shape, generator=torch.Generator().manual_seed(0))
    out_plain, out_both = _train_step(plain.train(), x), _train_step(both.train(), x)
    _assert_same_training_result(plain, out_plain, both, out_both)
    peaks = [_allocator_peak_mb(lambda m=m: _train_step(m.train(), x)) for m in (ckpt, both)]
    assert peaks[1] < peaks[0], peaks
