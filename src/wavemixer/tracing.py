"""Is this forward pass being traced into a graph (torch.export, ONNX, TorchScript trace, FX), or run eagerly?

Eager code may branch on a tensor's size (the fastest op for this size); a traced graph must not, or it is
fixed to the tracing input's size parity. Code asks :func:`is_symbolic` and takes a shape-generic path
when a graph is being recorded.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx
import torch.nn.functional as F
from torch import Tensor

__all__ = ["crop_to", "is_symbolic"]


def is_symbolic(*values: Any) -> bool:
    """True when any of ``values`` (tensors, sizes) is symbolic, or a TorchScript trace is running.

    Sizes are ``SymInt`` under torch.export and dynamic-shape torch.compile, FX ``Proxy`` objects under
    ``torch.fx.symbolic_trace``; ``torch.jit.trace`` records sizes as graph values but hands out ints.
    """
    if torch.jit.is_tracing():
        return True
    for v in values:
        if isinstance(v, (torch.fx.Proxy, torch.SymInt, torch.SymBool, torch.SymFloat)):
            return True
        if isinstance(v, torch.Tensor) and not isinstance(v, torch.fx.Proxy):
            if any(isinstance(s, torch.SymInt) for s in v.shape):
                return True
    return False


def crop_to(x: Tensor, height: int, width: int, offset: int = 0) -> Tensor:
    """``x[..., o:o + height, o:o + width]`` (``o = offset``) for maps at least that large.

    A traced graph crops with a negative ``F.pad`` instead: its output size is then exactly
    ``height x width`` symbolically (a slice is ``min(size, end)``, which torch.export cannot resolve).
    """
    o = offset
    if is_symbolic(x, height, width):
        return F.pad(x, [-o, width - x.shape[-1] + o, -o, height - x.shape[-2] + o])
    return x[..., o : o + height, o : o + width]
