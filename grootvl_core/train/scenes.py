"""Recipe: the bundled GrootV-nano + UperNet "Fashion-MNIST scenes" segmenter (issue 5).

Training scenes are generated from Fashion-MNIST's training images only (a fresh scene for every
sample: the generator is deterministic in (seed, split, index)); evaluation scenes from its test
images only, with their own fixed seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.scenes import SCENE_CLASSES, SCENE_PALETTE, FashionScenes
from ..models import GrootVSegmenter
from .fashion_mnist import FASHION_MEAN, FASHION_STD
from .grow import load_start_weights
from .loop import TrainConfig, model_device, train

__all__ = ["NANO_SEGMENTER", "SegmenterRecipe", "confusion_matrix", "init_backbone", "miou", "train_segmenter"]

NANO_SEGMENTER = dict(
    channels=32,
    depths=[1, 1, 3, 1],
    num_classes=len(SCENE_CLASSES),
    class_names=list(SCENE_CLASSES),
    palette=[list(c) for c in SCENE_PALETTE],
    in_chans=1,
    drop_path_rate=0.05,
    decoder_channels=64,
    aux_channels=32,
    auxiliary_head=True,
)
EVAL_SEED = 1234


@dataclass
class SegmenterRecipe:
    """Settings of :func:`train_segmenter` (the defaults are the bundled model's)."""

    model: dict = field(default_factory=lambda: dict(NANO_SEGMENTER))
    size: int = 96
    batch_size: int = 16
    aux_weight: float = 0.4
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=3000, lr=2e-3, warmup_steps=150, eval_every=500, checkpoint_every=500)
    )
    eval_scenes: int = 500
    periodic_eval_scenes: int = 100
    # a trained GrootV folder (config.json + model.safetensors) whose stages initialise the backbone,
    # as the paper's UperNet starts from ImageNet weights; None trains from scratch
    backbone_init: str | None = None
    # a trained segmenter folder whose weights (all of them) start this run: fine-tuning, e.g. a
    # second, lower-rate schedule; with larger ``model["depths"]`` the added layers start as identities
    # (train.grow: more capacity, same function at step 0); None starts from ``backbone_init`` or from scratch
    init_from: str | None = None


def normalise(images: torch.Tensor) -> torch.Tensor:
    """``(B, 1, S, S)`` in [0, 1] -> normalised as the Fashion-MNIST classifier's inputs."""
    return (images - FASHION_MEAN) / FASHION_STD


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    k = target * num_classes + pred
    return torch.bincount(k.reshape(-1), minlength=num_classes**2).reshape(num_classes, num_classes)


def miou(conf: torch.Tensor) -> tuple[float, list[float]]:
    """Mean IoU over the classes that occur (in prediction or target), and per-class IoU (NaN
    for classes absent from both)."""
    conf = conf.double()
    inter = conf.diag()
    union = conf.sum(0) + conf.sum(1) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, float("nan")))
    valid = ~torch.isnan(iou)
    return float(iou[valid].mean()), iou.tolist()


def evaluate_segmenter(
    model, scenes: FashionScenes, count: int, batch_size: int = 32, flip: bool = False
) -> dict[str, float]:
    """mIoU, pixel accuracy and per-class IoU on the first ``count`` scenes; ``flip``: with
    horizontal-flip test-time augmentation (:func:`grootvl_core.segment.segment_probabilities`)."""
    from ..segment import segment_probabilities

    num_classes = model.num_classes
    conf = torch.zeros(num_classes, num_classes, dtype=torch.long)
    correct = total = 0
    device = model_device(model)
    for i in range(0, count, batch_size):
        batch = [scenes[j] for j in range(i, min(count, i + batch_size))]
        x = normalise(torch.stack([b[0] for b in batch])).to(device)
        y = torch.stack([b[1] for b in batch])
        pred = segment_probabilities(model, x, flip=flip).argmax(1).cpu()
        conf += confusion_matrix(pred, y, num_classes)
        correct += (pred == y).sum().item()
        total += y.numel()
    m, per_class = miou(conf)
    out = {"mIoU": m, "pixel_acc": correct / total}
    out.update({f"IoU/{name}": v for name, v in zip(SCENE_CLASSES, per_class)})
    return out


def init_backbone(model: GrootVSegmenter, folder: str | Path) -> int:
    """Copy a trained GrootV's stage weights (not its classifier) into ``model.backbone``.

    Returns:
        The number of tensors copied.

    Raises:
        ValueError: the folder's model has another shape (channels, depths, input channels) or
            scan order, or lacks some backbone weight.
    """
    from ..models import GrootV

    source = GrootV.from_pretrained(str(folder))
    if source.scan_order != model.backbone.scan_order:
        raise ValueError(
            f"init_backbone: {folder} has scan_order={source.scan_order!r}, the segmenter {model.backbone.scan_order!r}"
        )
    target = model.backbone.state_dict()
    weights = {k: v for k, v in source.state_dict().items() if k in target}
    missing = sorted(set(target) - set(weights))
    wrong = sorted(k for k, v in weights.items() if v.shape != target[k].shape)
    if missing or wrong:
        raise ValueError(
            f"init_backbone: {folder} does not fit this backbone (missing {missing[:5]}, "
            f"other shapes {wrong[:5]}); train the classifier with the same channels, depths "
            "and in_chans"
        )
    model.backbone.load_state_dict(weights, strict=True)
    return len(weights)


def train_segmenter(
    out_dir: str | Path,
    recipe: SegmenterRecipe,
    resume: bool = False,
    data_root=None,
    progress: bool = True,
    device: str | torch.device = "cpu",
):
    """Train (on ``device``) on generated training scenes, evaluate on ``recipe.eval_scenes`` test
    scenes; returns ``(model, result)``."""
    train_scenes = FashionScenes("train", 10**9, size=recipe.size, seed=recipe.train.seed, root=data_root)
    test_scenes = FashionScenes("test", recipe.eval_scenes, size=recipe.size, seed=EVAL_SEED, root=data_root)
    model = GrootVSegmenter(**recipe.model)
    if recipe.init_from and recipe.backbone_init:
        raise ValueError(
            "SegmenterRecipe: give init_from (a whole segmenter) or backbone_init (a classifier's stages), not both"
        )
    fresh = not (resume and (Path(out_dir) / "last.pt").exists())
    if recipe.backbone_init and fresh:
        init_backbone(model, recipe.backbone_init)
    if recipe.init_from and fresh:
        load_start_weights(model, GrootVSegmenter.from_pretrained(str(recipe.init_from)), str(recipe.init_from))

    def batch_fn(step: int):
        items = [train_scenes[j] for j in range(step * recipe.batch_size, (step + 1) * recipe.batch_size)]
        x = torch.stack([it[0] for it in items])
        y = torch.stack([it[1] for it in items])
        flip = torch.from_numpy(np.random.default_rng((recipe.train.seed, step)).random(x.shape[0]) < 0.5)
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        return normalise(x), y

    def loss_fn(m, batch):
        x, y = batch
        if recipe.aux_weight > 0 and m.auxiliary_head is not None:
            logits, aux = m(x, return_aux=True)
            return F.cross_entropy(logits, y) + recipe.aux_weight * F.cross_entropy(aux, y)
        return F.cross_entropy(m(x), y)

    result = train(
        model,
        batch_fn,
        loss_fn,
        recipe.train,
        out_dir,
        evaluate=lambda m: evaluate_segmenter(m, test_scenes, recipe.periodic_eval_scenes),
        resume=resume,
        progress=progress,
        device=device,
    )
    model.eval()
    with torch.no_grad():
        result["final_metrics"] = evaluate_segmenter(model, test_scenes, recipe.eval_scenes)
        flipped = evaluate_segmenter(model, test_scenes, recipe.eval_scenes, flip=True)
        result["final_metrics"].update(mIoU_flip=flipped["mIoU"], pixel_acc_flip=flipped["pixel_acc"])
    result["recipe"] = asdict(recipe)
    return model, result
