"""aggregate_results: mean and sample std over folds, JSON + Markdown, clear errors."""
import json
import math

import pytest

from maskspec.bin import aggregate_results


def _res(path, acc, m_ap, task="single_label"):
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {"task_type": task, "mAP": m_ap, "mAUC": 0.9, "d_prime": None}
    if acc is not None:
        metrics["accuracy"] = acc
    path.write_text(json.dumps({"metrics": metrics}))
    return str(path)


def test_mean_and_std(tmp_path):
    files = [_res(tmp_path / f"exp/fold{i}/decode_test/results.json", acc, 0.5) for i, acc in
             enumerate([0.8, 0.9, 1.0], 1)]
    out = tmp_path / "summary.json"
    assert aggregate_results.main(["--output", str(out), *files]) == 0
    s = json.loads(out.read_text())
    assert s["num_runs"] == 3 and s["task_type"] == "single_label"
    assert s["metrics"]["accuracy"]["mean"] == pytest.approx(0.9)
    assert s["metrics"]["accuracy"]["std"] == pytest.approx(0.1)  # sample std of 0.8, 0.9, 1.0
    assert s["metrics"]["mAP"]["std"] == pytest.approx(0.0)
    assert "d_prime" not in s["metrics"]  # undefined everywhere
    assert [r["name"] for r in s["runs"]] == ["fold1/decode_test", "fold2/decode_test", "fold3/decode_test"]
    md = (tmp_path / "summary.md").read_text()
    assert "0.9000 ± 0.1000" in md and "| fold2/decode_test | 0.9000 |" in md


def test_single_run_std_zero_and_names(tmp_path):
    f = _res(tmp_path / "r.json", 0.7, 0.4)
    out = tmp_path / "s.json"
    assert aggregate_results.main(["--output", str(out), f, "--names", "only"]) == 0
    s = json.loads(out.read_text())
    assert s["metrics"]["accuracy"] == {"mean": 0.7, "std": 0.0, "values": [0.7]} and s["runs"][0]["name"] == "only"
    assert not math.isnan(s["metrics"]["mAP"]["mean"])


def test_errors(tmp_path, caplog):
    good = _res(tmp_path / "a.json", 0.7, 0.4)
    bad = tmp_path / "b.json"
    bad.write_text("{not json")
    assert aggregate_results.main(["--output", str(tmp_path / "s.json"), good, str(bad)]) == 1
    assert "b.json" in caplog.text
    multi = _res(tmp_path / "c.json", None, 0.3, task="multi_label")
    assert aggregate_results.main(["--output", str(tmp_path / "s.json"), good, multi]) == 1
    assert "mix task types" in caplog.text
    assert aggregate_results.main(["--output", str(tmp_path / "s.json"), good, multi, "--names", "x"]) == 2
    assert not (tmp_path / "s.json").exists()
