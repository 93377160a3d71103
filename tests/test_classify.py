"""grootvl_core.classify: top-k predictions, label names, the preprocessing transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grootvl_core import zoo
from grootvl_core.models.grootv import test_grootv as build_test_grootv


def test_classifier_topk_and_labels():
    from grootvl_core.classify import Classifier, label_names

    torch.manual_seed(0)
    model = build_test_grootv(num_classes=4).eval()
    clf = Classifier(model, zoo.Preprocess(input_size=32, resize=32), labels=("cat", "dog", "fox", "owl"))
    img = np.random.default_rng(2).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    (preds,) = clf.predict(img, topk=10)  # clipped to 4 classes
    assert [p.label for p in preds] == [("cat", "dog", "fox", "owl")[p.index] for p in preds]
    assert len(preds) == 4 and sum(p.probability for p in preds) == pytest.approx(1.0, abs=1e-5)
    assert all(a.probability >= b.probability for a, b in zip(preds, preds[1:]))
    with torch.no_grad():
        logits = model(clf.to_tensor(img)[None])
    assert preds[0].index == int(logits.argmax())
    with pytest.raises(ValueError, match="topk"):
        clf.predict(img, topk=0)
    assert label_names("imagenet-1k", 1000)[0] == "tench, Tinca tinca"
    assert label_names("imagenet-1k", 10)[3] == "class 3"  # mismatch: generic names
