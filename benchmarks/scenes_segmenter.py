"""Where the bundled scenes segmenter stands (issue 5): accuracy diagnostics, not speed.

    python benchmarks/scenes_segmenter.py [--scenes 200] [--model grootv-nano-scenes]

Prints mIoU of one zoo segmenter on
- the first N evaluation scenes (test garments, seed 1234): single pass, with flip averaging, and
  with flip averaging over 9 shifts of +-2 pixels (edge-replicated; 18 forward passes);
- N new scenes of *training* garments (seed 99, a seed no bundled schedule trained on): when this
  is no better than the test scenes, the model is short of capacity, not of data.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from grootvl_core.data.scenes import FashionScenes
from grootvl_core.segment import segment_probabilities
from grootvl_core.train.scenes import EVAL_SEED, confusion_matrix, evaluate_segmenter, miou, normalise
from grootvl_core.zoo import get_entry, load_model

UNSEEN_TRAIN_SEED = 99


def shifted_flip_probabilities(model, x: torch.Tensor, shift: int) -> torch.Tensor:
    """Flip-averaged probabilities averaged over the 3x3 grid of shifts in {-shift, 0, shift}^2
    (the image edge-replicated; each pixel averaged over the windows that cover it)."""
    size = x.shape[-1]
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    total = count = 0
    for dy in (0, shift, 2 * shift):
        for dx in (0, shift, 2 * shift):
            probs = segment_probabilities(model, padded[..., dy : dy + size, dx : dx + size], flip=True)
            canvas = probs.new_zeros(*probs.shape[:2], size + 2 * shift, size + 2 * shift)
            cover = probs.new_zeros(1, 1, size + 2 * shift, size + 2 * shift)
            canvas[..., dy : dy + size, dx : dx + size] = probs
            cover[..., dy : dy + size, dx : dx + size] = 1
            total, count = total + canvas, count + cover
    return (total / count)[..., shift : shift + size, shift : shift + size]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=200)
    p.add_argument("--model", default="grootv-nano-scenes")
    p.add_argument("--shift", type=int, default=2)
    args = p.parse_args()
    model = load_model(get_entry(args.model), "cpu").eval()
    test = FashionScenes("test", args.scenes, seed=EVAL_SEED)
    train_unseen = FashionScenes("train", args.scenes, seed=UNSEEN_TRAIN_SEED)
    rows = []
    with torch.inference_mode():
        segment_probabilities(model, normalise(test[0][0][None]))  # warm-up: the op's first call loads it
        for name, scenes, flip in (
            ("test scenes, single pass", test, False),
            ("test scenes, flip", test, True),
            ("new scenes of training garments, single pass", train_unseen, False),
        ):
            t0 = time.perf_counter()
            rows.append(
                (name, evaluate_segmenter(model, scenes, args.scenes, flip=flip)["mIoU"], time.perf_counter() - t0)
            )
        t0 = time.perf_counter()
        conf = torch.zeros(model.num_classes, model.num_classes, dtype=torch.long)
        for i in range(0, args.scenes, 50):
            batch = [test[j] for j in range(i, min(args.scenes, i + 50))]
            x = normalise(torch.stack([b[0] for b in batch]))
            y = torch.stack([b[1] for b in batch])
            pred = shifted_flip_probabilities(model, x, args.shift).argmax(1)
            conf += confusion_matrix(pred, y, model.num_classes)
        rows.append((f"test scenes, flip x 9 shifts of +-{args.shift} px", miou(conf)[0], time.perf_counter() - t0))
    print(f"{args.model}, {args.scenes} scenes each")
    print(f"| {'evaluation':<48} | mIoU % | seconds |")
    print(f"|{'-' * 50}|--------|---------|")
    for name, value, secs in rows:
        print(f"| {name:<48} | {100 * value:6.2f} | {secs:7.1f} |")


if __name__ == "__main__":
    main()
