"""The model-card texts of the bundled-model recipes: ``title``, ``summary`` (the first paragraph) and
``data`` (where the training and evaluation data came from), per task, from the recipe that trained the
model, the model and the arm. :func:`grootvl_core.train.run.run_training` hands them to
:func:`~grootvl_core.train.bundle.write_bundle`.
"""

from __future__ import annotations

from ..data.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD

__all__ = ["classifier_card", "segmenter_card", "lm_card"]


def _parameters(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()):,}"


def _averaged_note(cfg) -> str:
    """The model card's sentence on shipped averaged weights (empty without them)."""
    if not cfg.ema_decay:
        return ""
    return (
        f" The weights are the exponential moving average (decay {cfg.ema_decay} per step) of the training "
        "weights, which is what was evaluated."
    )


def classifier_card(recipe, model, arm: str) -> dict[str, str]:
    """The Fashion-MNIST classifier's card (:class:`~grootvl_core.train.fashion_mnist.ClassifierRecipe`)."""
    start = f"from the classifier in `{recipe.init_from}`" if recipe.init_from else "from scratch"
    if recipe.augment == "scene":
        purpose = (
            " (each item shown as inside a segmentation scene: scale jitter, textured background, "
            "other garments behind or over it; to pretrain the scenes segmenter's backbone)"
        )
    else:
        purpose = ", so the demo classifies offline"
    size = recipe.input_size
    summary = (
        f"A {_parameters(model)}-parameter GrootV ({arm} scan) trained {start} by grootvl on Fashion-MNIST"
        f"{purpose}. Input: one grey channel, resized to {size}x{size}, normalised with mean "
        f"{FASHION_MNIST_MEAN[0]:.4f} / std {FASHION_MNIST_STD[0]:.4f}. Classes: "
        + ", ".join(FASHION_MNIST_CLASSES)
        + "."
        + _averaged_note(recipe.train)
    )
    return dict(
        title="GrootV-nano, Fashion-MNIST",
        summary=summary,
        data=(
            "Fashion-MNIST (Zalando Research, MIT licence), official 60,000 / 10,000 train/test split, read "
            "from Debian's `dataset-fashion-mnist` package. Metrics are on the full test split."
        ),
    )


def segmenter_card(recipe, model, arm: str) -> dict[str, str]:
    """The Fashion-MNIST scenes segmenter's card (:class:`~grootvl_core.train.scenes.SegmenterRecipe`)."""
    if recipe.init_from:
        start = f" Fine-tuned from the trained segmenter in `{recipe.init_from}`."
    elif recipe.backbone_init:
        start = (
            f" The backbone started from the trained classifier in `{recipe.backbone_init}` (as the "
            "paper's UperNet starts from ImageNet weights); the decoder from scratch."
        )
    else:
        start = " Trained from scratch (backbone included)."
    summary = (
        f"GrootV ({arm} scan) + UperNet segmenter trained by grootvl on {recipe.size}x{recipe.size} "
        '"Fashion-MNIST scenes" (2 to 5 garments pasted on a textured background; 11 classes: background '
        "+ the 10 Fashion-MNIST classes)." + start + _averaged_note(recipe.train)
    )
    return dict(
        title="GrootV-nano + UperNet, Fashion-MNIST scenes",
        summary=summary,
        data=(
            "Scenes generated deterministically (grootvl_core.data.scenes) from Fashion-MNIST (MIT licence, "
            "Debian `dataset-fashion-mnist`): training scenes only from the training images, evaluation "
            f"scenes ({recipe.eval_scenes}, seed 1234) only from the test images."
        ),
    )


def lm_card(recipe, model, arm: str) -> dict[str, str]:
    """The byte-level fortunes language model's card (:class:`~grootvl_core.train.fortunes.LMRecipe`)."""
    summary = (
        f"A {_parameters(model)}-parameter GrootL (Mamba + tree scanning, arm '{arm}', tree_scale "
        f"{model.config.tree_scale}) byte-level language model trained from scratch by grootvl on fortune "
        "cookies, so the demo generates text offline. It writes fortune-cookie-like English; it knows "
        "nothing else." + _averaged_note(recipe.train)
    )
    return dict(
        title="GrootL-nano, byte-level, fortunes",
        summary=summary,
        data=(
            "Debian's `fortunes` package (BSD fortune cookie files; see /usr/share/doc/fortunes/copyright), "
            "split by cookie into train / validation (5%, by SHA-1 of the cookie text). Validation metric: "
            "bits per byte of each validation cookie's continuation after 16 bytes of context."
        ),
    )
