"""Which convolution weights a model can use at an input size: kernel taps that only ever see zero padding,
and convolutions that run on maps too small for their kernels.

A network built for 224-px images and fed 32-px ones ends with stages on 1x1 or 2x2 maps, where a 3x3 (or
7x7) kernel's outer taps multiply nothing but padding: those weights are parameters the budget pays for and
training can never use. :func:`audit_convolutions` runs one forward pass with hooks and reports, for every
``Conv2d``/``ConvTranspose2d``, the map sizes it saw and how many of its weights sit in dead taps.

A tap ``k`` of a zero-padded convolution along one axis (input length ``N``, output ``M``, stride ``S``,
padding ``P``, dilation ``D``) is live if some output position reads a real input pixel through it:
``0 <= o*S - P + k*D < N`` for some ``o`` in ``[0, M)``. A 2-D tap is live if it is live along both axes.
For a transposed convolution the tap is live if some input position writes through it into the kept
output: ``0 <= i*S - P + k*D < M`` for some ``i`` in ``[0, N)``. Convolutions that pad with real pixels
(``padding_mode`` reflect/replicate/circular) have no dead taps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["ConvAudit", "ConvRecord", "audit_convolutions"]


@dataclass(frozen=True)
class ConvRecord:
    """One convolution as it ran: its input and output map sizes and its dead weights."""

    name: str
    kind: str  # "conv" or "transposed"
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    kernel: tuple[int, int]
    weights: int
    dead_weights: int


@dataclass
class ConvAudit:
    """The convolutions of one forward pass at ``input_size``, with totals over the whole model."""

    input_size: tuple[int, int, int]
    params: int
    convs: list[ConvRecord] = field(default_factory=list)

    @property
    def dead_params(self) -> int:
        return sum(c.dead_weights for c in self.convs)

    @property
    def dead_fraction(self) -> float:
        """Share of *all* the model's parameters that sit in padding-only taps."""
        return self.dead_params / self.params if self.params else 0.0

    @property
    def smallest_map(self) -> int:
        """The smallest side of any map a convolution read or wrote (the input size if there is no conv)."""
        sides = [s for c in self.convs for s in (*c.in_hw, *c.out_hw)]
        return min(sides) if sides else min(self.input_size[1:])

    def small_maps(self, below: int = 4) -> list[ConvRecord]:
        """Convolutions that read or write a map with a side smaller than ``below``."""
        return [c for c in self.convs if min(*c.in_hw, *c.out_hw) < below]


def _live_taps(n_in: int, n_out: int, kernel: int, stride: int, pad: int, dilation: int, transposed: bool) -> int:
    """How many of ``kernel`` taps along one axis touch a real pixel."""
    live = 0
    for k in range(kernel):
        if transposed:
            hit = any(0 <= i * stride - pad + k * dilation < n_out for i in range(n_in))
        else:
            hit = any(0 <= o * stride - pad + k * dilation < n_in for o in range(n_out))
        live += hit
    return live


def _padding(conv: nn.Conv2d | nn.ConvTranspose2d) -> tuple[int, int]:
    pad = conv.padding
    if isinstance(pad, str):  # "valid" or "same" (stride 1): torch pads the low side by total // 2
        if pad == "valid":
            return (0, 0)
        return tuple((d * (k - 1)) // 2 for d, k in zip(conv.dilation, conv.kernel_size))  # type: ignore[return-value]
    return (int(pad[0]), int(pad[1]))


def _record(name: str, conv: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor, y: torch.Tensor) -> ConvRecord:
    transposed = isinstance(conv, nn.ConvTranspose2d)
    in_hw = (int(x.shape[-2]), int(x.shape[-1]))
    out_hw = (int(y.shape[-2]), int(y.shape[-1]))
    kh, kw = conv.kernel_size
    weights = conv.weight.numel()
    if conv.padding_mode != "zeros" and not transposed:
        live = kh * kw
    else:
        ph, pw = _padding(conv)
        live_h = _live_taps(in_hw[0], out_hw[0], kh, conv.stride[0], ph, conv.dilation[0], transposed)
        live_w = _live_taps(in_hw[1], out_hw[1], kw, conv.stride[1], pw, conv.dilation[1], transposed)
        live = live_h * live_w
    per_tap = weights // (kh * kw)
    return ConvRecord(
        name, "transposed" if transposed else "conv", in_hw, out_hw, (kh, kw), weights, (kh * kw - live) * per_tap
    )


@torch.no_grad()
def audit_convolutions(model: nn.Module, input_size: tuple[int, int, int]) -> ConvAudit:
    """Run ``model`` once on a random ``(1, *input_size)`` batch (eval mode, CPU) and audit every 2-D conv."""
    audit = ConvAudit(tuple(input_size), sum(p.numel() for p in model.parameters()))  # type: ignore[arg-type]
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):

            def hook(mod: nn.Module, args: tuple, out: torch.Tensor, name: str = name) -> None:
                audit.convs.append(_record(name, mod, args[0], out))  # type: ignore[arg-type]

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        model(torch.randn(1, *input_size))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return audit
