"""Recipe: the bundled GrootV-nano Fashion-MNIST classifier (issue 5).

Fashion-MNIST's official split from Debian's ``dataset-fashion-mnist``; the 28x28 grey images are
used at their own size (stage grids 7/4/2/1; upsampling to 56 cost 2.5x the time per image and
was no more accurate at equal steps) with light augmentation (random shift by up to 2 pixels,
horizontal flip).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, load_fashion_mnist
from ..models import GrootV
from .grow import load_start_weights
from .loop import TrainConfig, model_device, train

__all__ = ["FASHION_MEAN", "FASHION_STD", "ClassifierRecipe", "NANO_CLASSIFIER", "preprocess_batch", "train_classifier"]

FASHION_MEAN, FASHION_STD = FASHION_MNIST_MEAN[0], FASHION_MNIST_STD[0]  # NOTE: scalars, for one grey channel
NANO_CLASSIFIER = dict(channels=32, depths=[1, 1, 3, 1], num_classes=10, in_chans=1, drop_path_rate=0.05)


@dataclass
class ClassifierRecipe:
    """Settings of :func:`train_classifier` (the defaults are the bundled model's)."""

    model: dict = field(default_factory=lambda: dict(NANO_CLASSIFIER))
    input_size: int = 28
    batch_size: int = 128
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=8000, lr=3e-3, warmup_steps=200, eval_every=1000, checkpoint_every=500
        )
    )
    eval_subset: int = 2000  # periodic evaluation on the first N test images; the end uses all
    # "shift": the 28x28 items shifted and flipped (the bundled classifier); "scene": each item as it
    # looks inside a segmentation scene (data.scenes.make_garment_view at input_size: scale jitter,
    # textured background, other garments behind or over it), to pretrain the segmenter's backbone
    augment: str = "shift"
    # a trained GrootV classifier folder to start from (fine-tuning; with larger ``model["depths"]`` the
    # added layers start as identities, see train.grow); None trains from scratch
    init_from: str | None = None


def preprocess_batch(images_uint8: torch.Tensor, input_size: int) -> torch.Tensor:
    """``(B, H, W)`` uint8 -> normalised ``(B, 1, S, S)`` float (bilinear resizing when ``H != S``)."""
    x = images_uint8.float().div_(255.0)[:, None]
    if x.shape[-2:] != (input_size, input_size):
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
    return (x - FASHION_MEAN) / FASHION_STD


def _augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    b = images.shape[0]
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    dy, dx = rng.integers(0, 5, b), rng.integers(0, 5, b)
    out = np.stack([padded[i, dy[i] : dy[i] + 28, dx[i] : dx[i] + 28] for i in range(b)])
    flip = rng.random(b) < 0.5
    out[flip] = out[flip, :, ::-1]
    return out


def _scene_views(images: np.ndarray, idx: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    from ..data.scenes import make_garment_view

    views = np.stack([make_garment_view(images, int(i), rng, size) for i in idx])
    flip = rng.random(len(idx)) < 0.5
    views[flip] = views[flip, :, ::-1]
    return views


def evaluate_classifier(
    model, images: np.ndarray, labels: np.ndarray, input_size: int, batch_size: int = 500
) -> dict[str, float]:
    """Top-1 accuracy (and mean cross-entropy) over the given images."""
    correct, loss, n = 0, 0.0, len(labels)
    device = model_device(model)
    for i in range(0, n, batch_size):
        x = preprocess_batch(torch.from_numpy(np.array(images[i : i + batch_size])), input_size).to(device)
        y = torch.from_numpy(labels[i : i + batch_size]).to(device)
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    return {"top1": correct / n, "loss": loss / n}


def train_classifier(
    out_dir: str | Path,
    recipe: ClassifierRecipe,
    resume: bool = False,
    data_root=None,
    progress: bool = True,
    device: str | torch.device = "cpu",
):
    """Train (on ``device``), evaluate on the full test split, and return ``(model, result)``."""
    train_x, train_y = load_fashion_mnist("train", data_root)
    test_x, test_y = load_fashion_mnist("test", data_root)
    if recipe.augment not in ("shift", "scene"):
        raise ValueError(f"ClassifierRecipe.augment must be 'shift' or 'scene', got {recipe.augment!r}")
    model = GrootV(**recipe.model)
    if recipe.init_from and not (resume and (Path(out_dir) / "last.pt").exists()):
        load_start_weights(model, GrootV.from_pretrained(str(recipe.init_from)), str(recipe.init_from))

    def batch_fn(step: int):
        rng = np.random.default_rng((recipe.train.seed, step))
        idx = rng.integers(0, len(train_y), recipe.batch_size)
        if recipe.augment == "scene":
            x = torch.from_numpy(_scene_views(train_x, idx, rng, recipe.input_size))
        else:
            x = torch.from_numpy(_augment(train_x[idx], rng))
        return preprocess_batch(x, recipe.input_size), torch.from_numpy(train_y[idx])

    def loss_fn(m, batch):
        x, y = batch
        return F.cross_entropy(m(x), y, label_smoothing=0.1)

    sub = recipe.eval_subset

    def periodic_eval(m):
        return evaluate_classifier(m, test_x[:sub], test_y[:sub], recipe.input_size)

    result = train(
        model,
        batch_fn,
        loss_fn,
        recipe.train,
        out_dir,
        evaluate=periodic_eval,
        resume=resume,
        progress=progress,
        device=device,
    )
    model.eval()
    with torch.no_grad():
        result["final_metrics"] = evaluate_classifier(model, test_x, test_y, recipe.input_size)
    result["recipe"] = asdict(recipe)
    result["classes"] = list(FASHION_MNIST_CLASSES)
    return model, result
