"""Semantic segmentation as a task: PIL / numpy image in, class mask out.

The image is resized to the zoo entry's square input (``preprocess.input_size``; the whole image,
no crop, so every pixel gets a class), segmented in one forward pass, and the mask is returned at
that size together with the resized image it belongs to, ready for
:func:`grootvl_core.viz.overlay_mask`. Shaped like :class:`~grootvl_core.classify.Classifier`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .classify import resize_transform, tensor_transform
from .image_io import to_rgb_image
from .zoo import Preprocess, ZooEntry, get_entry, load_model

__all__ = ["Segmentation", "Segmenter", "segment_probabilities"]


@dataclass
class Segmentation:
    """A segmentation result.

    Attributes:
        mask: ``(S, S)`` int64 class ids.
        image: ``(S, S, 3)`` uint8 RGB, the input as the model saw it (resized, grey if the
            model is grey).
        class_names: one name per class id.
        palette: ``(num_classes, 3)`` uint8 colours.
        probabilities: ``(S, S)`` float32 softmax probability of the chosen class.
    """

    mask: np.ndarray
    image: np.ndarray
    class_names: list[str]
    palette: np.ndarray
    probabilities: np.ndarray


def segment_probabilities(model: torch.nn.Module, x: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """Softmax class probabilities ``(B, K, S, S)`` float32 of ``model`` on ``x`` ``(B, C, S, S)``;
    with ``flip``, the mean of those of ``x`` and of its horizontal mirror (mirrored back)."""
    probs = model(x).float().softmax(dim=1)
    if flip:
        probs = 0.5 * (probs + model(x.flip(-1)).float().softmax(dim=1).flip(-1))
    return probs


class Segmenter:
    """A segmentation model (e.g. :class:`~grootvl_core.models.GrootVSegmenter`) with its preprocessing.

    Args:
        model: maps ``(B, C, S, S)`` to logits ``(B, K, S, S)`` and has ``class_names`` / ``palette``.
        preprocess: the entry's :class:`~grootvl_core.zoo.Preprocess`.
        flip: average the class probabilities of the image and of its mirror image (horizontal
            flip test-time augmentation, as mmsegmentation's ``flip=True``): two forward passes,
            usually a slightly better mask (the bundled scenes segmenter: see its model card).
    """

    def __init__(self, model: torch.nn.Module, preprocess: Preprocess = Preprocess(), flip: bool = False):
        for attr in ("class_names", "palette"):
            if not hasattr(model, attr):
                raise TypeError(f"Segmenter: {type(model).__name__} has no {attr!r} attribute")
        self.model = model.eval()
        self.preprocess = preprocess
        self.flip = bool(flip)

    @classmethod
    def from_zoo(cls, name: str | ZooEntry, device: str | torch.device = "cpu", flip: bool = False) -> Segmenter:
        entry = get_entry(name)
        if entry.task != "segmentation":
            raise ValueError(f"{entry.name!r} is a {entry.task} model, not a segmenter")
        return cls(load_model(entry, device), entry.preprocess, flip=flip)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to_input(self, image) -> tuple[torch.Tensor, np.ndarray]:
        """``(1, C, S, S)`` normalised tensor and the ``(S, S, 3)`` uint8 image it shows."""
        pre = self.preprocess
        resized = resize_transform(pre, crop=False)(to_rgb_image(image, grayscale=pre.grayscale))
        shown = np.asarray(resized.convert("RGB"), dtype=np.uint8)
        return tensor_transform(pre)(resized)[None], shown

    @torch.inference_mode()
    def predict(self, image, flip: bool | None = None) -> Segmentation:
        """Segment one image (any form :func:`~grootvl_core.image_io.to_rgb_image` accepts); ``flip``
        overrides the segmenter's own setting for this call (None: use it)."""
        x, shown = self.to_input(image)
        flip = self.flip if flip is None else bool(flip)
        probs = segment_probabilities(self.model, x.to(self.device), flip=flip)[0]
        conf, mask = probs.max(dim=0)
        return Segmentation(
            mask=mask.cpu().numpy().astype(np.int64),
            image=shown,
            class_names=list(self.model.class_names),
            palette=np.asarray(self.model.palette, dtype=np.uint8).reshape(-1, 3),
            probabilities=conf.cpu().numpy().astype(np.float32),
        )
