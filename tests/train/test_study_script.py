"""scripts/run_study.py: the study table from finished runs (mean, sample std, per seed)."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run_study.py"


def _load():
    spec = importlib.util.spec_from_file_location("run_study", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_table_mean_spread_and_missing_runs(tmp_path):
    study = _load()
    for arm, seed, top1 in (("tree", 0, 0.90), ("tree", 1, 0.92), ("raster", 0, 0.88)):
        folder = tmp_path / "classify" / f"{arm}-s{seed}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({"step": 600, "final_metrics": {"top1": top1}}))
    rows = study.table(tmp_path).splitlines()
    assert rows[2] == ("| classify | tree | 600 | 2 | Fashion-MNIST test top-1 (%) | 91.00 ± 1.41 | 90.00, 92.00 |")
    assert rows[3].startswith("| classify | raster | 600 | 1 |") and "88.00 ± n/a" in rows[3]
    assert len(rows) == 4  # no segment / lm rows without runs
    import pytest

    with pytest.raises(SystemExit):  # an arm the task does not have
        study.main(["--task", "classify", "--steps", "10", "--arms", "chain", "--out", str(tmp_path)])
