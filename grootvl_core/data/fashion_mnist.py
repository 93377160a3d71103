"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; MIT licence) read straight from Debian's
``dataset-fashion-mnist`` package: the official IDX files, official train/test split.

Never downloads: the project's setup (``scripts/setup.sh``) installs the package.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "default_root",
    "load_fashion_mnist",
    "FashionMNIST",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# Per-channel normalisation of the [0, 1] grey images, the one statement of it (the zoo entries,
# the timm cfg, the training recipes and the model cards read these): the training split's mean
# and standard deviation, rounded to 4 digits.
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_INSTALL_HINT = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; "
    "bash scripts/setup.sh does this), or point GROOTVL_FASHION_MNIST / root= at a folder "
    "holding the four official *-ubyte(.gz) files"
)


def default_root() -> Path:
    """``$GROOTVL_FASHION_MNIST`` or Debian's ``/usr/share/datasets/fashion-mnist``."""
    return Path(os.environ.get("GROOTVL_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))


def _open(root: Path, stem: str):
    for name in (stem, stem + ".gz"):
        path = root / name
        if path.is_file():
            return path, (gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb"))
    raise FileNotFoundError(f"Fashion-MNIST file {stem}(.gz) not found in {root}: {_INSTALL_HINT}")


def _read_idx(root: Path, stem: str, magic: int, ndim: int) -> np.ndarray:
    path, fh = _open(root, stem)
    with fh:
        data = fh.read()
    if len(data) < 4 + 4 * ndim or int.from_bytes(data[:4], "big") != magic:
        raise ValueError(f"{path} is not an IDX file with magic {magic:#x} (corrupt download?)")
    dims = [int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise ValueError(
            f"{path}: expected {expected} bytes of data for shape {dims}, found {len(data) - offset} (truncated file?)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def load_fashion_mnist(split: str, root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load one official split.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: folder with the IDX files (default :func:`default_root`).

    Returns:
        ``images`` uint8 ``(N, 28, 28)`` and ``labels`` int64 ``(N,)`` in ``0..9``
        (:data:`FASHION_MNIST_CLASSES`).
    """
    if split not in _FILES:
        raise ValueError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise FileNotFoundError(f"Fashion-MNIST folder {root} does not exist: {_INSTALL_HINT}")
    img_stem, lab_stem = _FILES[split]
    images = _read_idx(root, img_stem, 0x00000803, 3)
    labels = _read_idx(root, lab_stem, 0x00000801, 1).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


class FashionMNIST(torch.utils.data.Dataset):
    """Torch dataset over :func:`load_fashion_mnist`: ``(image float (1, 28, 28) in [0, 1], label)``,
    optionally transformed by ``transform(image_tensor) -> tensor``."""

    def __init__(self, split: str, root=None, transform=None):
        self.images, self.labels = load_fashion_mnist(split, root)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int):
        img = torch.from_numpy(self.images[idx].astype(np.float32) / 255.0)[None]
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[idx])
