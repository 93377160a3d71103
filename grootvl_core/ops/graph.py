"""Grid graphs and their edge weights (reference-grootvl.md section 1.2).

Vertex ``v = r * W + c`` (row-major). The edge list holds all vertical edges first, then all
horizontal ones, each block row-major, the smaller vertex id first in every pair. The edge order
matters: the MST breaks ties by the lower edge index.
"""

from __future__ import annotations

import functools

import torch

from . import reference
from .backend import implementation

__all__ = ["grid_edges", "cosine_edge_weights", "num_grid_edges"]


def num_grid_edges(height: int, width: int) -> int:
    """Number of edges of the 4-connected ``height x width`` grid: ``(H-1)*W + H*(W-1)``."""
    return (height - 1) * width + height * (width - 1)


@functools.lru_cache(maxsize=64)
@torch.inference_mode(False)  # NOTE: cached across calls, so never an inference tensor
def _grid_edges_cpu(height: int, width: int) -> torch.Tensor:
    ids = torch.arange(height * width, dtype=torch.int64).view(height, width)
    vertical = torch.stack([ids[:-1, :].reshape(-1), ids[1:, :].reshape(-1)], dim=1)  # (H-1)*W
    horizontal = torch.stack([ids[:, :-1].reshape(-1), ids[:, 1:].reshape(-1)], dim=1)  # H*(W-1)
    return torch.cat([vertical, horizontal], dim=0)


def grid_edges(height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Edges of the 4-connected ``height x width`` pixel grid.

    Args:
        height, width: grid size, each >= 1.
        device: where the result lives (default CPU).

    Returns:
        ``(E, 2)`` int64 tensor, ``E = (H-1)*W + H*(W-1)``: vertical edges ``[r*W+c, (r+1)*W+c]``
        first, then horizontal edges ``[r*W+c, r*W+c+1]``, each block row-major.
    """
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"grid_edges: height and width must be >= 1, got {height}x{width}")
    dev = torch.device("cpu") if device is None else torch.device(device)
    # NOTE: the cached tensors are shared; hand out a copy so callers may mutate theirs. A GPU
    # gets its own cached copy (a copy from pageable host memory would wait for the device).
    h, w = int(height), int(width)
    return (_grid_edges_cpu(h, w) if dev.type == "cpu" else _grid_edges_on(h, w, dev)).clone()


@functools.lru_cache(maxsize=64)
@torch.inference_mode(False)
def _grid_edges_on(height: int, width: int, device: torch.device) -> torch.Tensor:
    return _grid_edges_cpu(height, width).to(device)


def cosine_edge_weights(feature: torch.Tensor) -> torch.Tensor:
    """``exp(-cosine similarity)`` of the two endpoint feature vectors of every grid edge.

    Args:
        feature: ``(B, D, H, W)`` floating tensor; the tree is built from all ``D`` channels.

    Returns:
        ``(B, E)`` float32 weights in the edge order of :func:`grid_edges`. Computed in float32
        under ``no_grad`` (the tree is not differentiable), eps 1e-8 as ``F.cosine_similarity``.
    """
    if not isinstance(feature, torch.Tensor) or feature.dim() != 4:
        shape = tuple(feature.shape) if isinstance(feature, torch.Tensor) else type(feature)
        raise ValueError(f"cosine_edge_weights: feature must be (B, D, H, W), got {shape}")
    if not feature.is_floating_point():
        raise TypeError(f"cosine_edge_weights: feature must be floating point, got {feature.dtype}")
    with torch.no_grad():
        f = feature.float()
        # the native CPU kernel or the Triton one where they serve, else the same formula in torch ops
        mod = implementation(f.device)
        if mod is not reference and (f.device.type == "cpu" or getattr(mod, "NAME", None) == "triton"):
            return mod.grid_cosine_weights(f)
        return reference.grid_cosine_weights(f)
