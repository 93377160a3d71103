"""Write the demo's example files under assets/ (run once; the outputs are committed).

- assets/fashion/: one Fashion-MNIST *test* image per class (first occurrence), 28x28 PNG.
- assets/scenes/: the first "Fashion-MNIST scenes" evaluation scenes (test split, seed 1234), PNG.
- assets/photos/: public-domain / CC0 photos shipped with scikit-image (resized to <= 512 px).

Usage: python scripts/make_assets.py   (needs dataset-fashion-mnist and scikit-image)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent / "assets"
PHOTOS = {  # scikit-image name -> credit (from skimage.data's docstrings)
    "astronaut": "Eileen Collins, NASA Great Images database; public domain",
    "chelsea": "Chelsea the cat, by Stefan van der Walt; CC0",
    "coffee": "Coffee cup, by Rachel Michetti (Pikolo Espresso Bar); CC0",
    "rocket": "DSCOVR launch on Falcon 9, SpaceX; public domain",
}


def main() -> None:
    from grootvl_core.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
    from grootvl_core.data.scenes import FashionScenes
    from grootvl_core.train.scenes import EVAL_SEED

    images, labels = load_fashion_mnist("test")
    out = ROOT / "fashion"
    out.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(FASHION_MNIST_CLASSES):
        i = int(np.nonzero(labels == k)[0][0])
        slug = name.lower().replace("/", "-").replace(" ", "-")
        Image.fromarray(np.asarray(images[i])).save(out / f"test{i:04d}-{slug}.png")
    out = ROOT / "scenes"
    out.mkdir(parents=True, exist_ok=True)
    scenes = FashionScenes("test", 4, size=96, seed=EVAL_SEED)
    for i in range(4):
        img = (scenes[i][0][0].numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(out / f"scene{i}.png")
    import skimage.data

    out = ROOT / "photos"
    out.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        im = Image.fromarray(getattr(skimage.data, name)())
        im.thumbnail((512, 512), Image.LANCZOS)
        im.convert("RGB").save(out / f"{name}.jpg", quality=90)


if __name__ == "__main__":
    main()
