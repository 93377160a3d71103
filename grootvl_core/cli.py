"""Command line: ``python -m grootvl_core {classify, zoo, evaluate, convert, generate, train} ...``.

Reference: ``design.md`` (the CLI reads only the zoo), ``reference-grootvl.md`` 3.5 (checkpoint
conversion), 3.6 (evaluation). Each subcommand is one ``_add_<name>`` parser builder plus one
``_run_<name>`` function, listed in :data:`COMMANDS`; adding a subcommand is adding a row.

User errors (unknown model, unreadable image, corrupt checkpoint, offline) print one ``error:``
line to stderr and exit with status 1; usage errors exit with 2 (argparse); no tracebacks.
Set ``GROOTVL_DEBUG=1`` to see the traceback of a user error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main", "build_parser", "COMMANDS"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


# ------------------------------------------------------------------------------------------------
# classify
# ------------------------------------------------------------------------------------------------


def _add_classify(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "classify",
        help="top-k classes of one or more images",
        description="Classify images with a zoo model (ImageNet labels from timm for ImageNet models).",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any PIL-readable format)")
    p.add_argument("--model", default="grootv-t", help="zoo name (default: grootv-t; see `zoo`)")
    p.add_argument(
        "--weights",
        metavar="PATH_OR_DIR",
        help="local checkpoint file or config.json+model.safetensors folder",
    )
    p.add_argument("--ema", action="store_true", help="with --weights on a training checkpoint: use model_ema")
    p.add_argument("--topk", type=int, default=5, help="answers per image (default 5)")
    p.add_argument("--device", default="cpu", type=device_arg, help="cpu, cuda, cuda:1, ...")
    return p


def _run_classify(args: argparse.Namespace) -> int:
    from .classify import Classifier

    if args.topk < 1:
        raise ValueError(f"--topk must be >= 1, got {args.topk}")
    clf = Classifier.from_zoo(args.model, device=args.device, weights=args.weights, use_ema=args.ema)
    for path in args.images:
        (preds,) = clf.predict(path, topk=args.topk)
        print(path)
        for rank, p in enumerate(preds, 1):
            print(f"  {rank}. {p.probability * 100:6.2f}%  {p.label}  (class {p.index})")
    return EXIT_OK


def device_arg(value: str) -> str:
    """argparse ``type`` of ``--device``: a device torch knows and this machine has (``cpu``, ``cuda``,
    ``cuda:N``, ...), so a wrong value is reported as the flag's error, not as a later failure."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a device torch knows (use cpu, cuda or cuda:N; {str(exc).splitlines()[0]})"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{value!r}: torch sees no CUDA GPU on this machine (use cpu)")
        if device.index is not None and device.index >= count:
            raise argparse.ArgumentTypeError(
                f"{value!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
            )
    return value


def train_device_arg(value: str) -> str:
    """``--device`` of ``train``: ``auto`` or a device torch knows (whether this machine has it is
    checked by the training loop, before anything is written)."""
    if value != "auto":
        import torch

        try:
            torch.device(value)
        except (RuntimeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a device torch knows (use auto, cpu, cuda or cuda:N; {str(exc).splitlines()[0]})"
            ) from None
    return value


# ------------------------------------------------------------------------------------------------
# zoo
# ------------------------------------------------------------------------------------------------


def _add_zoo(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "zoo",
        help="list the named models",
        description="List the zoo: task, size, reported metrics, where weights come from.",
    )
    p.add_argument("--task", choices=("classification", "segmentation", "generation"), help="only this task")
    return p


def _format_params(n: int | None) -> str:
    return "-" if not n else f"{n / 1e6:.1f}M"


def _run_zoo(args: argparse.Namespace) -> int:
    from . import zoo

    rows = [("name", "task", "params", "FLOPs", "reported", "cached", "source")]
    for name in zoo.list_models(args.task):
        e = zoo.get_entry(name)
        loc = zoo.locate_weights(e)
        where = loc.describe(detail=True)
        shown = [f"{k} {v}" for k, v in list(e.metrics.items())[:3]]
        more = len(e.metrics) - len(shown)
        metrics = (", ".join(shown) + (f" (+{more} more)" if more > 0 else "")) or "-"
        rows.append(
            (
                e.name,
                e.task,
                _format_params(e.params),
                e.flops or "-",
                metrics,
                "yes" if loc.offline else "no",
                where,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    offline = zoo.available_offline(args.task)
    print(f"\nworks offline now: {', '.join(offline) if offline else 'none'}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# evaluate
# ------------------------------------------------------------------------------------------------


def _add_evaluate(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="top-1/top-5 on an ImageNet-style val folder (single process or torchrun)",
        description="Evaluate a zoo model on an ImageFolder (one sub-folder per class, sorted = class index). "
        "Run under `torchrun --nproc_per_node N -m grootvl_core evaluate ...` for several processes.",
    )
    p.add_argument("--model", required=True, help="zoo name (gives architecture and preprocessing)")
    p.add_argument(
        "--data",
        required=True,
        metavar="IMAGENET_VAL_DIR",
        help="folder of class sub-folders (or the ImageNet root holding val/)",
    )
    p.add_argument(
        "--weights",
        metavar="PATH_OR_DIR",
        help="local checkpoint file or config.json+model.safetensors folder",
    )
    p.add_argument("--ema", action="store_true", help="with --weights on a training checkpoint: use model_ema")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch per process (default 64)")
    p.add_argument("--workers", type=int, default=4, help="data-loading workers per process (default 4)")
    p.add_argument("--device", default=None, type=device_arg, help="default: cuda:LOCAL_RANK if available, else cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _run_evaluate(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from . import zoo
    from .classify import ImageTransform
    from .train.evaluate import evaluate_folder, init_distributed

    entry = zoo.get_entry(args.model)
    if entry.task != "classification":
        raise ValueError(f"evaluate: {entry.name!r} is a {entry.task} model; evaluate needs a classifier")
    rank, world, device = init_distributed(args.device)
    try:
        if args.weights:
            model = zoo.load_local_weights(entry, args.weights, device, use_ema=args.ema)
        else:
            model = zoo.load_model(entry, device)
        result = evaluate_folder(
            model,
            args.data,
            ImageTransform(entry.preprocess),
            batch_size=args.batch_size,
            workers=args.workers,
            device=device,
            progress=not args.no_progress,
        )
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        print(f"model {entry.name}  images {result.total}  processes {world}")
        print(f"top-1 {result.top1:.3f}%  ({result.correct1}/{result.total})")
        print(f"top-5 {result.top5:.3f}%  ({result.correct5}/{result.total})")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# convert
# ------------------------------------------------------------------------------------------------


def _add_convert(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "convert",
        help="official/training checkpoint -> Hub folder (config.json, model.safetensors, README.md)",
        description="Convert a checkpoint (official .pth training checkpoint, bare state dict or safetensors) "
        "into a Hugging Face folder, loaded safely and strictly.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="source file")
    p.add_argument(
        "--arch",
        required=True,
        help="architecture (grootv_tiny, grootv_small, grootv_base, ...) or zoo model name (grootv-nano-scenes); "
        "an architecture of a zoo entry is built with that entry's config",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--ema", action="store_true", help="convert model_ema instead of model")
    p.add_argument("--push-to-hub", metavar="REPO", help="also upload the folder to this Hub repo (org/name)")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    return p


def _run_convert(args: argparse.Namespace) -> int:
    from . import weights, zoo

    # --arch names a zoo entry or an architecture; an architecture of a zoo entry converts to that
    # entry's own model (its kwargs: e.g. the bundled segmenter's 11 classes, depths 1-1-7-2).
    if args.arch in zoo.MODELS:
        entry = zoo.get_entry(args.arch)
    else:
        entry = next((zoo.get_entry(n) for n in zoo.list_models() if zoo.get_entry(n).arch == args.arch), None)
    arch = entry.arch if entry else args.arch
    factory, filter_fn = zoo.resolve_architecture(arch)
    card = dict(
        arch=arch,
        title=(entry.description if entry else arch),
        task=(entry.task if entry else "classification"),
        metrics=(entry.metrics if entry else {}),
        license=(entry.license if entry else "other"),
        repo_id=args.push_to_hub or args.out,
    )
    if entry:
        card["model_class"] = entry.model_class
    model = zoo.build_model(entry) if entry else factory(pretrained=False)
    out = weights.convert_checkpoint(args.checkpoint, model, args.out, filter_fn=filter_fn, use_ema=args.ema, card=card)
    print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    if args.push_to_hub:
        url = weights.push_folder(out, args.push_to_hub, private=args.private or None)
        print(f"pushed to {args.push_to_hub}: {url}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# generate
# ------------------------------------------------------------------------------------------------


def _add_generate(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "generate",
        help="continue a text prompt with a language model, streaming the tokens",
        description="Generate text with a zoo language model (GrootL / Mamba, reference 4), printing each "
        "piece as it is produced. The prompt is the tree-2 context (its band graph).",
    )
    p.add_argument("prompt", help="the text to continue (the instruction, with --instruction)")
    p.add_argument(
        "--model", default="grootl-130m", help="zoo name (default: grootl-130m; see `zoo --task generation`)"
    )
    p.add_argument("--weights", metavar="DIR", help="local config.json+model.safetensors folder instead of the zoo's")
    p.add_argument(
        "--tokenizer",
        metavar="DIR_OR_REPO",
        help="tokenizer folder or Hub repo (default: the weights folder if it has one, else the zoo entry's)",
    )
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate at most (default 64)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default), > 0 samples")
    p.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass in (0, 1]")
    p.add_argument("--seed", type=int, default=None, help="random seed for sampling")
    p.add_argument("--instruction", action="store_true", help="wrap the prompt in GrootL's instruction template")
    p.add_argument("--device", default="cpu", type=device_arg, help="cpu, cuda, cuda:1, ...")
    return p


def _generation_tokenizer(entry, args: argparse.Namespace):
    from . import zoo
    from .tokenizer import load_tokenizer

    if args.tokenizer:
        return load_tokenizer(args.tokenizer)
    return zoo.load_entry_tokenizer(entry, weights=args.weights)


def _run_generate(args: argparse.Namespace) -> int:
    from . import zoo
    from .generation import stream_text

    entry = zoo.get_entry(args.model)
    if entry.task != "generation":
        raise ValueError(
            f"{entry.name!r} is a {entry.task} model; generation models: {', '.join(zoo.list_models('generation'))}"
        )
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if args.weights:
        model = zoo.load_local_weights(entry, args.weights, device=args.device)
    else:
        model = zoo.load_model(entry, device=args.device)  # errors list what works offline
    tokenizer = _generation_tokenizer(entry, args)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} ids but the model only {model.config.vocab_size}; "
            "pass the tokenizer that belongs to these weights (--tokenizer)"
        )
    for piece in stream_text(
        model,
        tokenizer,
        args.prompt,
        use_template=args.instruction,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    ):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------


def _add_train(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train one of the project's bundled models (Fashion-MNIST classifier, scenes segmenter, fortunes LM)",
        description="Train a bundled-model recipe from scratch on data installed by scripts/setup.sh, evaluate it "
        "and write OUT/model (config.json, model.safetensors, model card, reference outputs). Resumable; the exact "
        "command is recorded in OUT/command.txt.",
    )
    p.add_argument("task", choices=("classify", "segment", "lm"))
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (checkpoints, metrics, model)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arm", default="tree", help="study arm: tree (default) or raster; for lm: tree, chain, plain")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--bundle", metavar="NAME", help="also copy OUT/model to checkpoints/NAME")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--device",
        default="auto",
        type=train_device_arg,
        help="where to train: auto (default: the GPU when torch sees one, else the CPU), cpu, cuda, cuda:N",
    )
    p.add_argument(
        "--init-backbone",
        metavar="DIR",
        help="segment: start the GrootV backbone from this trained "
        "classifier folder (same channels/depths/in_chans), e.g. checkpoints/grootv-nano-fmnist",
    )
    p.add_argument(
        "--init-from",
        metavar="DIR",
        help="classify / segment: start from this trained classifier / "
        "segmenter folder (fine-tuning; same architecture, or a shallower one with --depths)",
    )
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    p.add_argument(
        "--ema-decay",
        type=float,
        default=None,
        metavar="D",
        help="keep an exponential moving average of the weights (e.g. 0.999); it is what is evaluated "
        "and written to OUT/model (default: none)",
    )
    p.add_argument(
        "--augment",
        choices=("shift", "scene"),
        default=None,
        help="classify: 'shift' (default, the bundled classifier) or 'scene' (items as inside a "
        "segmentation scene, to pretrain the segmenter's backbone)",
    )
    p.add_argument(
        "--input-size",
        type=int,
        default=None,
        metavar="S",
        help="classify: input side in pixels (default 28; e.g. 48 with --augment scene)",
    )
    p.add_argument(
        "--depths",
        default=None,
        metavar="D1,D2,D3,D4",
        help="classify / segment: layers per GrootV stage (default: the recipe's, 1,1,3,1); with "
        "--init-from a shallower model, the added layers start as identities",
    )
    return p


def _parse_depths(text: str) -> list[int]:
    try:
        depths = [int(t) for t in text.split(",")]
    except ValueError:
        depths = []
    if len(depths) != 4 or min(depths) < 1:
        raise ValueError(f"--depths must be four positive integers like 1,1,7,2, got {text!r}")
    return depths


def _run_train(args: argparse.Namespace) -> int:
    import torch

    from .train.run import run_training

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.init_from and args.init_backbone:
        raise ValueError(
            "--init-from (a whole segmenter) and --init-backbone (a classifier's stages) exclude each other; give one"
        )
    overrides = None
    if args.init_backbone:
        if args.task != "segment":
            raise ValueError("--init-backbone applies to the segment task only")
        if not (Path(args.init_backbone) / "config.json").is_file():
            raise ValueError(f"--init-backbone {args.init_backbone}: no config.json there (a GrootV folder is needed)")
        overrides = {"backbone_init": str(args.init_backbone)}
    classify_only = {"augment": args.augment, "input_size": args.input_size}
    given = {k: v for k, v in classify_only.items() if v is not None}
    if given and args.task != "classify":
        raise ValueError(f"--{'/--'.join(k.replace('_', '-') for k in given)} apply to the classify task only")
    if args.init_from and args.task == "lm":
        raise ValueError("--init-from applies to the classify and segment tasks only")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if args.ema_decay is not None and not 0.0 <= args.ema_decay < 1.0:
        raise ValueError(f"--ema-decay must be in [0, 1) (e.g. 0.999; 0 disables), got {args.ema_decay}")
    if args.input_size is not None and args.input_size < 16:
        raise ValueError(f"--input-size must be >= 16 (the model downsamples 16x), got {args.input_size}")
    if args.init_from:
        if not (Path(args.init_from) / "config.json").is_file():
            raise ValueError(f"--init-from {args.init_from}: no config.json there (a trained model folder is needed)")
        given["init_from"] = str(args.init_from)
    if args.depths is not None:
        if args.task == "lm":
            raise ValueError("--depths applies to the classify and segment tasks only")
        given["model"] = {"depths": _parse_depths(args.depths)}
    if given:
        overrides = {**(overrides or {}), **given}
    result = run_training(
        args.task,
        args.out,
        steps=args.steps,
        seed=args.seed,
        arm=args.arm,
        resume=args.resume,
        bundle=args.bundle,
        batch_size=args.batch_size,
        lr=args.lr,
        ema_decay=args.ema_decay,
        device=args.device,
        recipe_overrides=overrides,
    )
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in result["final_metrics"].items() if "/" not in k)
    print(f"trained {args.task} ({args.arm}) in {result['train_seconds'] / 60:.1f} min: {metrics}")
    print(f"model written to {Path(args.out) / 'model'}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# Dispatch
# ------------------------------------------------------------------------------------------------

# name -> (parser builder, runner). Append a row to add a subcommand.
COMMANDS: dict[str, tuple[Callable, Callable[[argparse.Namespace], int]]] = {
    "classify": (_add_classify, _run_classify),
    "zoo": (_add_zoo, _run_zoo),
    "evaluate": (_add_evaluate, _run_evaluate),
    "convert": (_add_convert, _run_convert),
    "generate": (_add_generate, _run_generate),
    "train": (_add_train, _run_train),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``grootvl`` argument parser with one sub-parser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="python -m grootvl_core", description="GrootVL: tree-topology state space models."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add, run in COMMANDS.values():
        add(sub).set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 user error, 2 usage error)."""
    from .hub import CheckpointError, OfflineError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code or 0)
    try:
        return args._run(args)
    except (ValueError, CheckpointError, OfflineError, OSError) as exc:
        if os.environ.get("GROOTVL_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except RuntimeError as exc:  # environment state (e.g. --device cuda without a GPU)
        if os.environ.get("GROOTVL_DEBUG"):
            raise
        print(
            f"error: {str(exc).strip().splitlines()[0]} (set GROOTVL_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
