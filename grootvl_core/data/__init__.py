"""Label lists, palettes and datasets for the bundled and published models.

Modules (import the one you need; nothing heavy is imported here):
``ade20k`` (ADE20K class names and palette), ``fashion_mnist``, ``scenes``, ``fortunes``.
"""

from .ade20k import ADE20K_CLASSES, ADE20K_PALETTE

__all__ = ["ADE20K_CLASSES", "ADE20K_PALETTE"]
