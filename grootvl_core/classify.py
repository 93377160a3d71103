"""Image classification as a task: PIL / numpy image in, top-k labels out.

Reference: ``reference-grootvl.md`` section 3.6 (evaluation preprocessing: shorter side resized
to 224 bicubic, i.e. crop ratio 1.0, center crop, ImageNet mean/std). The preprocessing comes from
the zoo entry; labels from timm's ImageNet metadata (``timm.data.ImageNetInfo``) for ImageNet models.
Shaped like SAM's ``SamPredictor``: a numpy/PIL-level :meth:`Classifier.predict` over a torch-level
:meth:`Classifier.predict_torch`; the model itself stays differentiable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .image_file import MAX_PIXELS, read_image
from .zoo import Preprocess, ZooEntry, get_entry, load_local_weights, load_model

__all__ = [
    "Prediction",
    "Classifier",
    "ImageTransform",
    "build_transform",
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


def build_transform(pre: Preprocess):
    """torchvision transform for ``pre``: resize shorter side, center crop, tensor, normalize.

    Returns:
        A callable ``PIL.Image -> (C, S, S) float32`` tensor, ``S = pre.input_size``.
    """
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    try:
        interp = InterpolationMode(pre.interpolation)
    except ValueError:
        raise ValueError(
            f"unknown interpolation {pre.interpolation!r}; use 'bicubic', 'bilinear' or 'nearest'"
        ) from None
    return transforms.Compose(
        [
            transforms.Resize(pre.resize, interpolation=interp),
            transforms.CenterCrop(pre.input_size),
            transforms.ToTensor(),
            transforms.Normalize(pre.mean, pre.std),
        ]
    )


class ImageTransform:
    """Picklable ``image -> (C, S, S)`` tensor: :func:`to_pil_rgb` then :func:`build_transform`.

    Args:
        pre: the preprocessing of a zoo entry.
    """

    def __init__(self, pre: Preprocess):
        self.pre = pre
        self.transform = build_transform(pre)

    def __call__(self, image) -> torch.Tensor:
        return self.transform(to_pil_rgb(image, grayscale=self.pre.grayscale))


def to_pil_rgb(image, grayscale: bool = False) -> Image.Image:
    """Normalise any reasonable image to an 8-bit RGB (or ``L``) PIL image.

    Args:
        image: a ``PIL.Image`` (any mode: L, LA, P, RGBA, CMYK, I;16, I, F, ...), a path, or a numpy
            array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` of uint8, uint16 or float in
            ``[0, 1]``.
        grayscale: return mode ``L`` instead of ``RGB``.

    Returns:
        A PIL image in mode ``RGB`` (or ``L``). Alpha is composited on white.

    Raises:
        ValueError: unreadable file, wrong array shape, empty or oversized image.
        TypeError: unsupported input type.
    """
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        image = read_image(image, max_pixels=MAX_PIXELS)  # size checked from the header first
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, a numpy array or a path, got {type(image).__name__}")
    w, h = image.size
    if w == 0 or h == 0:
        raise ValueError(f"image is empty ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise ValueError(f"image is too large ({w}x{h} pixels > {MAX_PIXELS:,}); downscale it first")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"the image has {int((~np.isfinite(arr)).sum()):,} NaN or infinite pixel values "
                             "(a float image): write finite values, e.g. in [0, 1]")
        hi = 65535.0 if image.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if image.mode == "F" and arr.max(initial=0) <= 1.0:
            hi = 1.0
        image = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L" if grayscale else "RGB")


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(
            f"image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"image array is empty (shape {arr.shape})")
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError("image array contains NaN or infinite values")
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        raise ValueError(f"image array dtype must be uint8, uint16, bool or float in [0, 1]; got {arr.dtype}")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.ndim if arr.ndim == 2 else arr.shape[2]]
    return Image.fromarray(np.ascontiguousarray(arr), mode=mode)


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
    ) -> "Classifier":
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
        """Preprocess one image (see :func:`to_pil_rgb` for accepted inputs) to ``(C, S, S)`` float32."""
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
            [Prediction(int(i), labels[int(i)], float(p)) for p, i in zip(vs, ix)]
            for vs, ix in zip(values, indices)
        ]
