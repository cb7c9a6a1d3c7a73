"""What building a task's data gives the engine: the three splits and what the model needs to know of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DataBundle", "DataInfo"]


@dataclass
class DataInfo:
    """What the model and the saved checkpoint need to know about the data (a task may subclass it to add
    its own facts: a segmentation palette, a super-resolution scale)."""

    name: str
    num_classes: int
    labels: list[str]
    in_chans: int
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_stats: dict[str, Any] | None = field(default=None, kw_only=True)

    @property
    def color_mode(self) -> str:
        """``L`` for one channel, ``RGB`` for three: how images are decoded for this data set."""
        return "L" if self.in_chans == 1 else "RGB"


@dataclass
class DataBundle:
    """The train/val/test splits of one data set, with what the model and the reports need to know of it."""

    train: Any
    val: Any
    test: Any | None
    info: DataInfo
    in_memory: bool = True
    notes: list[str] = field(default_factory=list)
    #: options the data decided (data-derived defaults), applied to the run's configuration
    derived: dict[str, Any] = field(default_factory=dict)
    #: fingerprint of each split's images, stored with the run so eval can check it rebuilt the same split
    split_hashes: dict[str, str] = field(default_factory=dict)

    def split(self, name: str) -> Any:
        """The ``train``, ``val`` or ``test`` split; a missing one is an error naming the split."""
        ds = {"train": self.train, "val": self.val, "test": self.test}[name]
        if ds is None:
            raise ValueError(f"{self.info.name} has no {name} split; use --split val")
        return ds
