"""A small, resumable training loop shared by the bundled-model recipes (classify, segment, lm).

What it does, so that every recipe gets it for free:

- fixed seeds (python, numpy, torch) and the exact command line written to ``command.txt``;
- AdamW with weight decay on >= 2-D weights only, linear warmup then cosine decay, grad clipping;
- periodic evaluation (a callable returning a dict of metrics) logged to ``metrics.jsonl``;
- resumable checkpoints (``last.pt``: model, optimizer, scheduler, step, RNG states), saved every
  ``checkpoint_every`` steps and at the end; ``resume=True`` continues from ``last.pt``;
- optionally an exponential moving average of the weights (timm's ``ModelEmaV3``): it is what the
  periodic evaluation scores (the raw weights too, as ``raw/<metric>``) and what the run returns;
- a tqdm progress bar with the running loss;
- any device: the model and each batch go to ``device`` (``"auto"``: CUDA when present, else CPU).

The recipe supplies the model, ``batch_fn(step) -> batch`` (a pure function of the step index, so a
resumed run sees exactly the batches an uninterrupted one would) and ``loss_fn(model, batch)``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["TrainConfig", "model_device", "resolve_device", "seed_everything", "to_device", "train", "record_command"]


@dataclass
class TrainConfig:
    """Optimisation settings.

    Args:
        steps: optimizer steps in total.
        lr: peak learning rate; warmup_steps: linear warmup from 0; min_lr_ratio: cosine floor.
        weight_decay: AdamW decay on weights with >= 2 dims (norms, biases, A_logs-style vectors
            are not decayed).
        grad_clip: max gradient norm (0 disables).
        eval_every, checkpoint_every: in steps (0 disables the periodic one; both run at the end).
        seed: seeds python, numpy and torch.
        ema_decay: keep an exponential moving average of the weights with this decay per step
            (e.g. 0.999: about the last 1000 steps); 0 disables. The average is evaluated and
            returned: small noisy batches make the last weights a noisy sample, the average is not.
    """

    steps: int = 1000
    lr: float = 2e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    eval_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0
    ema_decay: float = 0.0

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"TrainConfig: steps must be >= 1, got {self.steps}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig: lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig: ema_decay must be in [0, 1) (0 disables the average), got {self.ema_decay}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the GPU when torch sees one, else the CPU; anything else as ``torch.device`` reads
    it. Asking for CUDA without a usable GPU is an error that says so (not a crash mid-run)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r}: torch sees no CUDA GPU here (torch {torch.__version__}); "
            "use --device cpu, or auto"
        )
    return dev


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (nested tuples, lists, dicts) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (evaluation code sends its inputs there)."""
    return next(model.parameters()).device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def record_command(out_dir: Path, argv: list[str] | None = None, extra: dict[str, Any] | None = None) -> str:
    """Write the exact command that produced ``out_dir`` (default: this process's command line,
    as ``python -m grootvl_core ...`` when run through the CLI) and ``extra`` settings to
    ``command.txt``; returns the command."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if argv is None:
        argv = sys.argv[1:]
        prog = (
            ["python", "-m", "grootvl_core"]
            if Path(sys.argv[0]).name in ("__main__.py", "grootvl")
            else ["python", sys.argv[0]]
        )
        argv = prog + argv
    cmd = " ".join(shlex.quote(str(a)) for a in argv)
    text = cmd + "\n"
    if extra:
        text += json.dumps(extra, indent=2, sort_keys=True, default=str) + "\n"
    (out_dir / "command.txt").write_text(text)
    return cmd


def _param_groups(model: nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return f


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(
    model: nn.Module,
    batch_fn: Callable[[int], Any],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    resume: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` for ``cfg.steps`` steps.

    Args:
        model: the model (moved to ``device``).
        batch_fn: ``batch_fn(step)`` returns the batch of that step (deterministic in ``step``).
        loss_fn: ``loss_fn(model, batch) -> scalar loss``.
        cfg: :class:`TrainConfig`.
        out_dir: where ``last.pt``, ``metrics.jsonl`` go.
        evaluate: ``evaluate(model) -> {"metric": value}``, run every ``cfg.eval_every`` steps and
            at the end (the model is put in eval mode and back).
        resume: continue from ``out_dir/last.pt`` if it exists (also one written on another device).
        device: where to train (see :func:`resolve_device`); each batch is moved there, and
            ``evaluate`` gets the model there.

    Returns:
        ``{"step", "train_seconds", "final_metrics", "history"}``. With ``cfg.ema_decay > 0``,
        ``model`` holds the averaged weights on return (``last.pt`` keeps both: ``model`` and
        ``model_ema``).
    """
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    device = resolve_device(device)
    model.to(device)
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    start, elapsed, history = 0, 0.0, []
    ckpt_path = out / "last.pt"
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # our own file
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, elapsed, history = state["step"], state["train_seconds"], state["history"]
        _set_rng_state(state["rng"])
    ema = None
    if cfg.ema_decay > 0:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=cfg.ema_decay)  # starts as a copy of the (loaded) weights
        if resume and ckpt_path.exists() and "model_ema" in state:
            ema.module.load_state_dict(state["model_ema"])

    def save(step: int) -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "step": step,
                "train_seconds": elapsed,
                "history": history,
                "rng": _rng_state(),
                "config": asdict(cfg),
                **({"model_ema": ema.module.state_dict()} if ema else {}),
            },
            tmp,
        )
        os.replace(tmp, ckpt_path)  # never leave a half-written checkpoint

    def run_eval(step: int) -> dict[str, float]:
        if evaluate is None:
            return {}
        model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in evaluate(ema.module if ema else model).items()}
            raw = {f"raw/{k}": float(v) for k, v in evaluate(model).items()} if ema else {}
        model.train()
        record = {"step": step, "train_seconds": round(elapsed, 1), **metrics, **raw}
        history.append(record)
        with open(out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        return metrics

    model.train()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress, dynamic_ncols=True)
    running = None
    metrics: dict[str, float] = {}
    for step in bar:
        t0 = time.perf_counter()
        batch = to_device(batch_fn(step), device)
        loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            save(step)
            raise FloatingPointError(
                f"training diverged at step {step} (loss {loss.item()}); last good state "
                f"saved in {ckpt_path}; lower the learning rate and resume"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model)  # constant decay from the first step: the average starts at the initial weights
        elapsed += time.perf_counter() - t0
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.set_postfix(loss=f"{running:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
        done = step + 1
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            metrics = run_eval(done)
            bar.write(f"step {done}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
            save(done)
    bar.close()
    metrics = (
        run_eval(cfg.steps)
        if (not history or history[-1]["step"] != cfg.steps)
        else {k: v for k, v in history[-1].items() if k not in ("step", "train_seconds")}
    )
    save(cfg.steps)
    if ema is not None:
        model.load_state_dict(ema.module.state_dict())
    return {"step": cfg.steps, "train_seconds": elapsed, "final_metrics": metrics, "history": history}
