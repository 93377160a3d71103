"""Image classification as a task: PIL / numpy image in, top-k labels out.

Reference: ``reference-grootvl.md`` section 3.6 (evaluation preprocessing: shorter side resized
to 224 bicubic, i.e. crop ratio 1.0, center crop, ImageNet mean/std). The preprocessing comes from
the zoo entry; labels from timm's ImageNet metadata (``timm.data.ImageNetInfo``) for ImageNet models.
Shaped like SAM's ``SamPredictor``: a numpy/PIL-level :meth:`Classifier.predict` over a torch-level
:meth:`Classifier.predict_torch`; the model itself stays differentiable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .image_file import MAX_PIXELS
from .image_io import to_rgb_image
from .zoo import Preprocess, ZooEntry, get_entry, load_local_weights, load_model

__all__ = [
    "Prediction",
    "Classifier",
    "ImageTransform",
    "build_transform",
    "resize_transform",
    "tensor_transform",
    "to_pil_rgb",
    "label_names",
    "MAX_PIXELS",
]


@dataclass(frozen=True)
class Prediction:
    """One of the top-k answers: class index, label and softmax probability."""

    index: int
    label: str
    probability: float


to_pil_rgb = to_rgb_image  # NOTE: the historical name of the shared reader, kept importable


def _interpolation(pre: Preprocess):
    from torchvision.transforms import InterpolationMode

    try:
        return InterpolationMode(pre.interpolation)
    except ValueError:
        raise ValueError(
            f"unknown interpolation {pre.interpolation!r}; use 'bicubic', 'bilinear' or 'nearest'"
        ) from None


def resize_transform(pre: Preprocess, crop: bool = True):
    """The geometric half of :func:`build_transform`: ``PIL.Image -> PIL.Image`` of side ``pre.input_size``.

    Args:
        pre: the preprocessing of a zoo entry.
        crop: resize the shorter side to ``pre.resize`` then center-crop (classification); False
            resizes the whole image to the square input (segmentation, which labels every pixel).
    """
    from torchvision import transforms

    if not crop:
        return transforms.Resize((pre.input_size, pre.input_size), interpolation=_interpolation(pre))
    return transforms.Compose(
        [transforms.Resize(pre.resize, interpolation=_interpolation(pre)), transforms.CenterCrop(pre.input_size)]
    )


def tensor_transform(pre: Preprocess):
    """The numeric half of :func:`build_transform`: ``PIL.Image -> (C, S, S)`` float32, ``[0, 1]``
    then normalised with ``pre.mean`` / ``pre.std``."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(pre.mean, pre.std)])


def build_transform(pre: Preprocess, crop: bool = True):
    """torchvision transform for ``pre``: resize shorter side, center crop, tensor, normalize.

    Args:
        pre: the preprocessing of a zoo entry.
        crop: see :func:`resize_transform`.

    Returns:
        A callable ``PIL.Image -> (C, S, S) float32`` tensor, ``S = pre.input_size``.
    """
    from torchvision import transforms

    return transforms.Compose([resize_transform(pre, crop), tensor_transform(pre)])


class ImageTransform:
    """Picklable ``image -> (C, S, S)`` tensor: :func:`~grootvl_core.image_io.to_rgb_image`, then
    :func:`build_transform`.

    Args:
        pre: the preprocessing of a zoo entry.
    """

    def __init__(self, pre: Preprocess):
        self.pre = pre
        self.transform = build_transform(pre)

    def __call__(self, image) -> torch.Tensor:
        return self.transform(to_rgb_image(image, grayscale=self.pre.grayscale))


def label_names(labels: str | Sequence[str] | None, num_classes: int) -> list[str]:
    """Human-readable class names for ``num_classes`` outputs.

    Args:
        labels: ``"imagenet-1k"`` (timm's ImageNet descriptions, e.g. ``"tench, Tinca tinca"``), an
            explicit list, or None.
        num_classes: model outputs; when the list does not match, generic ``"class i"`` names are used.

    Returns:
        ``num_classes`` strings.
    """
    if isinstance(labels, str):
        from timm.data import ImageNetInfo

        info = ImageNetInfo(labels)
        if info.num_classes() == num_classes:
            return [info.index_to_description(i) for i in range(num_classes)]
    elif labels is not None and len(labels) == num_classes:
        return [str(x) for x in labels]
    return [f"class {i}" for i in range(num_classes)]


class Classifier:
    """A classification model with its preprocessing and labels.

    Args:
        model: a module mapping ``(B, C, S, S)`` to logits ``(B, K)``.
        preprocess: the entry's :class:`~grootvl_core.zoo.Preprocess`.
        labels: ``"imagenet-1k"``, a list of ``K`` names, or None.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Preprocess = Preprocess(),
        labels: str | Sequence[str] | None = "imagenet-1k",
    ):
        self.model = model.eval()
        self.preprocess = preprocess
        self.transform = ImageTransform(preprocess)
        self._labels_spec = labels
        self._labels: list[str] | None = None

    @classmethod
    def from_zoo(
        cls,
        name: str | ZooEntry,
        device: str | torch.device = "cpu",
        weights: str | None = None,
        use_ema: bool = False,
    ) -> Classifier:
        """Build from a zoo entry; ``weights`` (file or Hub folder) overrides where weights come from."""
        entry = get_entry(name)
        if entry.task != "classification":
            raise ValueError(f"{entry.name!r} is a {entry.task} model, not a classifier")
        model = load_local_weights(entry, weights, device, use_ema) if weights else load_model(entry, device)
        return cls(model, entry.preprocess, entry.labels)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            num = getattr(self.model, "num_classes", None)
            if not num:
                raise ValueError("this model has no classifier head (num_classes=0)")
            self._labels = label_names(self._labels_spec, int(num))
        return self._labels

    def to_tensor(self, image) -> torch.Tensor:
        """Preprocess one image to ``(C, S, S)`` float32 (accepted inputs: see
        :func:`~grootvl_core.image_io.to_rgb_image`)."""
        return self.transform(image)

    @torch.inference_mode()
    def predict_torch(self, batch: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities ``(B, K)`` for a preprocessed batch ``(B, C, S, S)``."""
        if batch.ndim != 4:
            raise ValueError(f"predict_torch: batch must be (B, C, H, W), got shape {tuple(batch.shape)}")
        logits = self.model(batch.to(self.device, torch.float32))
        return logits.float().softmax(dim=-1)

    def predict(self, images, topk: int = 5) -> list[list[Prediction]]:
        """Top-k predictions for one image or a list of images.

        Args:
            images: one image or a list (PIL, numpy, or path).
            topk: answers per image (clipped to the number of classes).

        Returns:
            One list of :class:`Prediction` (most probable first) per image.
        """
        if not isinstance(topk, int) or topk < 1:
            raise ValueError(f"topk must be a positive integer, got {topk!r}")
        if not isinstance(images, (list, tuple)):
            images = [images]
        if not images:
            raise ValueError("no images given")
        batch = torch.stack([self.to_tensor(im) for im in images])
        probs = self.predict_torch(batch).cpu()
        k = min(topk, probs.shape[-1])
        values, indices = probs.topk(k, dim=-1)
        labels = self.labels
        return [
            [Prediction(int(i), labels[int(i)], float(p)) for p, i in zip(vs, ix)] for vs, ix in zip(values, indices)
        ]
