"""ImageNet-style top-1 / top-5 evaluation over an ImageFolder, in one process or under torchrun.

Reference: ``reference-grootvl.md`` section 3.6 (validation preprocessing, ``ImageFolder(val)``,
top-1/top-5). Unlike the official ``validate`` (a ``DistributedSampler`` that pads the set with
duplicates, and an average of per-rank batch means), :class:`ShardSampler` gives every image to
exactly one rank and the ranks all-reduce *counts*, so the numbers equal a single-process run.

Distributed use: ``torchrun --nproc_per_node N -m grootvl_core evaluate --model grootv-t --data
DIR``. The process group is initialised from the torchrun environment (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``...), with ``nccl`` on CUDA and ``gloo`` on CPU.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

__all__ = ["EvalResult", "ShardSampler", "distributed_env", "init_distributed", "evaluate", "evaluate_folder"]


@dataclass(frozen=True)
class EvalResult:
    """Accuracies in percent and the exact counts behind them."""

    top1: float
    top5: float
    correct1: int
    correct5: int
    total: int


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, rank + 2 world, ...`` of a dataset of ``length`` items.

    No padding and no duplicates: shards differ in size by at most one, and their union is every
    index exactly once.

    Args:
        length: dataset size.
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of processes.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"ShardSampler: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.length, self.rank, self.world_size = int(length), int(rank), int(world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return max(0, math.ceil((self.length - self.rank) / self.world_size))


def distributed_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` without it)."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_distributed(device: str | torch.device | None = None) -> tuple[int, int, torch.device]:
    """Join the torchrun process group if ``WORLD_SIZE > 1`` (nccl on CUDA, gloo on CPU).

    Args:
        device: requested device; default ``cuda:LOCAL_RANK`` when CUDA is available, else CPU.

    Returns:
        ``(rank, world_size, device)``.
    """
    rank, world, local = distributed_env()
    if device is None:
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def evaluate(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    batch_size: int = 64,
    workers: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> EvalResult:
    """Top-1 / top-5 of ``model`` on ``dataset``, sharded across the process group if one is up.

    Args:
        model: maps ``(B, C, H, W)`` to logits ``(B, K)``.
        dataset: yields ``(image tensor (C, H, W), int label)``.
        batch_size: images per forward pass (per process).
        workers: DataLoader worker processes (per process).
        device: where the model runs.
        progress: tqdm bar on rank 0.

    Returns:
        :class:`EvalResult` over the whole dataset (identical on every rank).
    """
    if batch_size < 1 or workers < 0:
        raise ValueError(f"evaluate: need batch_size >= 1 and workers >= 0, got {batch_size}, {workers}")
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device(device)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ShardSampler(len(dataset), rank, world),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    model = model.to(device).eval()
    counts = torch.zeros(3, dtype=torch.float64, device=device)  # correct@1, correct@5, total
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(dataset), desc="evaluate", unit="img")
    with torch.inference_mode():
        for images, targets in loader:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            logits = model(images)
            k = min(5, logits.shape[-1])
            top = logits.topk(k, dim=-1).indices  # (B, k)
            hits = top.eq(targets[:, None])
            counts[0] += hits[:, :1].any(dim=1).sum()
            counts[1] += hits.any(dim=1).sum()
            counts[2] += targets.numel()
            if bar is not None:
                # approximate for the whole set: the shards advance together
                bar.update(min(targets.numel() * world, bar.total - bar.n))
    if bar is not None:
        bar.close()
    if distributed:
        dist.all_reduce(counts, op=dist.ReduceOp.SUM)
    c1, c5, total = (int(round(v)) for v in counts.tolist())
    if total == 0:
        raise ValueError("evaluate: the dataset is empty")
    return EvalResult(100.0 * c1 / total, 100.0 * c5 / total, c1, c5, total)


def evaluate_folder(
    model: torch.nn.Module,
    root: str | os.PathLike,
    transform: Callable,
    batch_size: int = 64,
    workers: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> EvalResult:
    """:func:`evaluate` on ``torchvision.datasets.ImageFolder(root, transform)``.

    Args:
        root: a folder of class sub-folders (ImageNet ``val`` laid out by synset, sorted names
            giving class indices 0..999, as in the official code); also accepts the parent holding
            ``val/``.
        transform: ``PIL.Image -> (C, H, W)`` tensor (see :func:`grootvl_core.classify.build_transform`).

    Raises:
        ValueError: missing folder or no images in it.
    """
    from torchvision.datasets import ImageFolder

    root = Path(root)
    if (root / "val").is_dir() and {p.name for p in root.iterdir() if p.is_dir()} <= {"train", "val", "test"}:
        root = root / "val"  # the ImageNet root was given
    if not root.is_dir():
        raise ValueError(
            f"evaluate: data folder {root} does not exist (expected ImageNet val/ with one sub-folder per class)"
        )
    try:
        dataset = ImageFolder(str(root), transform=transform)
    except (FileNotFoundError, RuntimeError) as exc:
        raise ValueError(f"evaluate: no images found under {root}: {exc}") from None
    return evaluate(model, dataset, batch_size=batch_size, workers=workers, device=device, progress=progress)
