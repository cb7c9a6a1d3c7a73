"""Image transforms: classification preprocessing and joint image/mask and HR-crop augmentation.

Segmentation and super-resolution augment with torchvision's transforms v2; an image and its mask travel
together as ``tv_tensors.Image`` and ``tv_tensors.Mask``, so one random draw moves both and the mask is
resized by nearest neighbour (no new label values). Evaluation transforms are never random.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from wavemixer.constants import IGNORE_INDEX

from .images import unit_float

__all__ = ["SCALE_RANGE", "HRCrop", "Preprocess", "SegmentationTransform"]

#: random rescaling range of the segmentation training augmentation
SCALE_RANGE = (0.75, 1.5)


class Preprocess:
    """Classification: uint8 C×H×W image → normalised float tensor; with ``train=True`` also the random
    augmentation (pad-and-crop, flip, TrivialAugmentWide, RandAugment).

    Picklable (data-loader workers) and shared by training, ``eval`` and ``predict``. The pad-and-crop and the
    flip draw from torch's generator by hand rather than through ``v2.RandomCrop``/``v2.RandomHorizontalFlip``:
    those draw differently, and runs started with these draws are continued and compared bit for bit.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        size: Sequence[int] | None = None,
        *,
        train: bool = False,
        crop_padding: int = 0,
        hflip: bool = False,
        trivial_augment: bool = False,
        rand_augment_magnitude: int | None = None,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.size = tuple(size) if size else None
        self.train = train
        self.crop_padding = crop_padding
        self.hflip = hflip
        self._trivial = None
        if train and trivial_augment:
            from torchvision.transforms import v2

            self._trivial = v2.TrivialAugmentWide()
        self._rand = None
        if train and rand_augment_magnitude is not None:
            from torchvision.transforms import v2

            self._rand = v2.RandAugment(num_ops=2, magnitude=rand_augment_magnitude)

    def __call__(self, img: Tensor) -> Tensor:
        if self.size is not None and tuple(img.shape[-2:]) != self.size:
            from torchvision.transforms.v2 import functional as TF

            img = TF.resize(img, list(self.size), antialias=True)
        if self.train:
            if self.crop_padding:
                p = self.crop_padding
                h, w = img.shape[-2:]
                padded = torch.nn.functional.pad(img, (p, p, p, p))
                i, j = torch.randint(0, 2 * p + 1, (2,)).tolist()
                img = padded[:, i : i + h, j : j + w]
            if self.hflip and torch.rand(()) < 0.5:
                img = img.flip(-1)
            if self._trivial is not None:
                img = self._trivial(img)
            if self._rand is not None:
                img = self._rand(img)
        return (unit_float(img) - self.mean) / self.std


class SegmentationTransform:
    """uint8 image C×H×W + int mask H×W → normalised float image + int64 mask, augmented jointly.

    Training: one random scale in ``scale_range`` (``v2.ScaleJitter`` with the image's own size as target: the
    image bilinear with antialias, the mask nearest), a random crop of ``crop_size`` (``v2.RandomCrop``,
    padding the image with 0 and the mask with the ignore index where the scaled image is smaller), a random
    horizontal flip. Evaluation (``train=False``): only the normalisation. Picklable for data-loader workers.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        train: bool = False,
        crop_size: tuple[int, int] | None = None,
        scale_range: tuple[float, float] | None = SCALE_RANGE,
        hflip: bool = False,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.mean, self.std = list(mean), list(std)
        self.train, self.crop_size, self.scale_range, self.hflip = train, crop_size, scale_range, hflip
        self.ignore_index = ignore_index

    def _augmentation(self, height: int, width: int) -> object:
        from torchvision import tv_tensors
        from torchvision.transforms import v2

        steps: list[object] = []
        if self.scale_range is not None:
            steps.append(v2.ScaleJitter((width, height), scale_range=self.scale_range, antialias=True))
        fill = {tv_tensors.Image: 0, tv_tensors.Mask: self.ignore_index}
        steps.append(v2.RandomCrop(self.crop_size or (height, width), pad_if_needed=True, fill=fill))
        if self.hflip:
            steps.append(v2.RandomHorizontalFlip())
        return v2.Compose(steps)

    def __call__(self, img: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as TF

        if img.shape[-2:] != mask.shape[-2:]:
            raise ValueError(
                f"image is {tuple(img.shape[-2:])} but its mask is {tuple(mask.shape[-2:])}: a mask "
                "must have exactly the size of its image"
            )
        image, target = tv_tensors.Image(img), tv_tensors.Mask(mask.long())
        if self.train:
            image, target = self._augmentation(*img.shape[-2:])(image, target)  # type: ignore[operator]
        x = TF.normalize(TF.to_dtype(image.as_subclass(Tensor), torch.float32, scale=True), self.mean, self.std)
        return x.contiguous(), target.as_subclass(Tensor).long().contiguous()


class HRCrop:
    """Super-resolution training: a random ``size``×``size`` crop of a uint8 HR image (``v2.RandomCrop``) with
    random horizontal and vertical flips."""

    def __init__(self, size: int, *, flips: bool = False) -> None:
        self.size, self.flips = size, flips

    def __call__(self, img: Tensor) -> Tensor:
        from torchvision.transforms import v2

        steps = [v2.RandomCrop(self.size)]
        if self.flips:
            steps += [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]
        return v2.Compose(steps)(img)
