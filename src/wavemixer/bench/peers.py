"""Peers at a parameter budget: the models a user would pick instead of WaveMix, sized to match it.

A peer is fully described by ``(family, width, depth, num_classes, in_chans, img_size, design)`` —
:class:`PeerSpec` — which is what results and run folders store; :func:`build_peer` rebuilds exactly the same
model from it. :func:`solve_peer` finds the width whose parameter count comes closest to a budget (depth follows
the budget's scale, :func:`peer_depth`), and :class:`PeerModel` makes a peer savable and trainable like a WaveMix
model (``--model peer:<family>``, :func:`create_peer`).

Which library class each family is, and how it is adapted to small inputs, is in
:mod:`wavemixer.bench.peer_families`; its names are re-exported here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from wavemixer.bench.peer_families import (
    DESIGNS,
    ISOTROPIC_DEPTHS,
    PEER_FAMILIES,
    SEGMENTATION_PEER_FAMILIES,
    STAGED_DEPTHS,
    PeerBuilder,
    PeerFamily,
    all_peer_families,
    default_design,
    peer_depth,
    peer_family,
)

__all__ = [
    "DESIGNS",
    "ISOTROPIC_DEPTHS",
    "MAX_PEER_PARAMS",
    "PEER_FAMILIES",
    "PEER_PREFIX",
    "SEGMENTATION_PEER_FAMILIES",
    "STAGED_DEPTHS",
    "PeerBuilder",
    "PeerFamily",
    "PeerModel",
    "PeerSpec",
    "all_peer_families",
    "build_peer",
    "count_params",
    "create_peer",
    "default_design",
    "is_peer_name",
    "peer_depth",
    "peer_family",
    "solve_peer",
]


@dataclass(frozen=True)
class PeerSpec:
    """Everything that determines a peer model; JSON-friendly (``dataclasses.asdict``)."""

    family: str
    width: int
    depth: int
    num_classes: int
    in_chans: int
    img_size: int
    design: str = "imagenet"  # what configs saved before the small-input design rebuild

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"unknown peer design {self.design!r}; expected one of {list(DESIGNS)}")

    def build(self, device: torch.device | str | None = None) -> nn.Module:
        """The peer at its solved width (:func:`build_peer`)."""
        return build_peer(self, device=device)


#: the largest parameter budget a peer is built for (4 GB of fp32 weights); larger ones fail only once memory runs out
MAX_PEER_PARAMS = 1_000_000_000


def _check_depth_applies(fam: PeerFamily, depth: Any, who: str, option: str) -> None:
    """A depth is refused for a family whose architecture fixes it (named as the caller gives it)."""
    if depth is not None and fam.depths is None:
        raise ValueError(f"{who} has the depth its architecture fixes; {option} does not apply, got {depth!r}")


def _check_budget(params: Any, name: str = "params") -> None:
    """A parameter budget is a positive integer, at most :data:`MAX_PEER_PARAMS` (refused before any build)."""
    if not isinstance(params, int) or isinstance(params, bool) or not 1 <= params <= MAX_PEER_PARAMS:
        raise ValueError(
            f"{name} must be a positive integer of at most {MAX_PEER_PARAMS:,} (a parameter budget), got {params!r}"
        )


BUDGET_TOLERANCE = 0.10
"""How far a solved peer may miss its budget (the comparisons match parameters within 10 %)."""


def _check_met(family: str, params: int, depth: int, got: int) -> None:
    """Refuse a budget that no width meets within :data:`BUDGET_TOLERANCE` (too small for the family at
    this depth), rather than return a model of another size."""
    if abs(got - params) > BUDGET_TOLERANCE * params:
        raise ValueError(
            f"params={params:,} cannot be met by peer:{family} at depth {depth}: the closest width gives {got:,} "
            f"parameters (more than {BUDGET_TOLERANCE:.0%} off); give a larger budget or a smaller depth"
        )


def _check_positive(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"--model-arg {key} must be a positive integer, got {value!r}")


def build_peer(spec: PeerSpec, *, device: torch.device | str | None = None) -> nn.Module:
    """Build the library model that ``spec`` describes (randomly initialised)."""
    family = peer_family(spec.family)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        return family.build(
            width=spec.width, depth=spec.depth, num_classes=spec.num_classes, in_chans=spec.in_chans,
            img_size=spec.img_size, design=spec.design,
        )  # fmt: skip


def count_params(model: nn.Module) -> int:
    """All parameters of ``model`` (the budgets count every one, trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def solve_peer(
    family: str,
    params: int,
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    img_size: int = 32,
    depth: int | None = None,
    design: str | None = None,
) -> tuple[PeerSpec, int]:
    """The width whose parameter count is closest to ``params`` (models built on the meta device).

    ``design`` defaults to the one suited to ``img_size`` (:func:`default_design`).

    Returns the spec and its exact parameter count. Parameter count grows monotonically with width,
    so a doubling search followed by bisection needs ~15 builds.
    """
    fam = peer_family(family)
    _check_budget(params)
    _check_depth_applies(fam, depth, f"peer family {family!r}", "depth")
    if depth is not None:
        _check_positive("depth", depth)
    depth = peer_depth(family, params) if depth is None else depth
    design = default_design(img_size) if design is None else design

    def spec(units: int) -> PeerSpec:
        return PeerSpec(family, units * fam.step, depth, num_classes, in_chans, img_size, design)

    @functools.cache  # the search revisits widths; each count is a model build
    def count(units: int) -> int:
        return count_params(build_peer(spec(units), device="meta"))

    lo = max(1, fam.min_width // fam.step)
    if count(lo) >= params:
        _check_met(family, params, depth, count(lo))
        return spec(lo), count(lo)
    hi = lo * 2
    while count(hi) < params:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # invariant: count(lo) < params <= count(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < params else (lo, mid)
    best = min((lo, hi), key=lambda u: abs(count(u) - params))
    _check_met(family, params, depth, count(best))
    return spec(best), count(best)


PEER_PREFIX = "peer:"
"""``--model peer:<family>`` trains a peer with ``--model-arg params=N`` (a budget) or ``width=``/``depth=``."""


class PeerModel(nn.Module):
    """A peer as a savable model: the library model under ``.model``, its :class:`PeerSpec` as ``.config``.

    ``save_pretrained``/``from_pretrained`` store and rebuild it from that config, so a trained peer is
    evaluated, predicted with and compared exactly as a WaveMix model is. Its ``forward`` returns logits
    (classification) or the ``(B, classes, H, W)`` map (segmentation), as the WaveMix models do.
    """

    def __init__(
        self,
        *,
        family: str,
        width: int,
        depth: int,
        num_classes: int,
        in_chans: int = 3,
        img_size: int = 32,
        design: str = "imagenet",
    ) -> None:
        super().__init__()
        spec = PeerSpec(family, width, depth, num_classes, in_chans, img_size, design)
        self.model = build_peer(spec)
        self.config = dataclasses.asdict(spec)
        self.task = peer_family(family).task
        self.num_classes, self.in_chans = num_classes, in_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def is_peer_name(name: str | None) -> bool:
    """Whether ``--model`` names a peer (``peer:FAMILY``) rather than a registry model."""
    return isinstance(name, str) and name.startswith(PEER_PREFIX)


def create_peer(
    name: str,
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    model_args: dict[str, Any] | None = None,
    task: str = "classification",
) -> PeerModel:
    """``peer:<family>`` with ``params=N`` (solved to that budget) or ``width=W`` [``depth=D``], and optionally
    ``design=imagenet|small-input`` (default: the one suited to ``img_size``); the family must be one of
    ``task``'s."""
    family = name[len(PEER_PREFIX) :]
    families = all_peer_families()
    if family not in families or families[family].task != task:
        own = sorted(f.name for f in families.values() if f.task == task)
        what = f" is a {families[family].task} peer" if family in families else f": unknown peer family {family!r}"
        raise ValueError(
            f"--model {name}{what}; --task {task} takes "
            + (", ".join(f"{PEER_PREFIX}{f}" for f in own) if own else "no peers")
        )
    args = dict(model_args or {})
    unknown = sorted(set(args) - {"params", "width", "depth", "design"})
    if unknown:
        raise ValueError(
            f"--model {name} takes --model-arg params=N, or width=W and depth=D, and design=; got {unknown}"
        )
    if ("params" in args) == ("width" in args):
        raise ValueError(f"--model {name} needs exactly one of --model-arg params=N (a budget) or width=W")
    _check_depth_applies(families[family], args.get("depth"), f"--model {name}", "--model-arg depth")
    design = args.get("design", default_design(img_size))
    if design not in DESIGNS:
        raise ValueError(f"--model-arg design must be one of {list(DESIGNS)}, got {design!r}")
    if "params" in args:
        _check_budget(args["params"], "--model-arg params")  # named as the command line gives it
        spec, _ = solve_peer(
            family,
            args["params"],
            num_classes=num_classes,
            in_chans=in_chans,
            img_size=img_size,
            depth=args.get("depth"),
            design=design,
        )
        width, depth = spec.width, spec.depth
    else:
        width = args["width"]
        depth = args.get("depth", peer_depth(family, 0))
        for key, value in (("width", width), ("depth", depth)):
            _check_positive(key, value)
        fam = families[family]
        if width < fam.min_width or width % fam.step:
            raise ValueError(
                f"--model {name} --model-arg width must be a multiple of {fam.step} of at least {fam.min_width} "
                f"(what {fam.source} is built with), got {width}"
            )
        spec = PeerSpec(family, width, depth, num_classes, in_chans, img_size, design)
        if (n := count_params(build_peer(spec, device="meta"))) > MAX_PEER_PARAMS:  # counted before any allocation
            raise ValueError(
                f"--model-arg width={width} depth={depth} gives {n:,} parameters, more than the {MAX_PEER_PARAMS:,} "
                "a peer is built for; give a smaller width"
            )
    return PeerModel(family=family, width=width, depth=depth, num_classes=num_classes, in_chans=in_chans,
                     img_size=img_size, design=design)  # fmt: skip
