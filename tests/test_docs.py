"""Figures the README states come from a committed measurement: the demo's wall time and stage times."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "bench" / "results" / "demo"


def _wall_seconds() -> float:
    text = (DEMO / "time.txt").read_text()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    assert m, "bench/results/demo/time.txt holds no /usr/bin/time -v output"
    return int(m[1] or 0) * 3600 + int(m[2]) * 60 + float(m[3])


def test_readme_demo_time_is_the_committed_measurement():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"it takes (\d+) min (\d+) s once the\s+environment exists \(table (\d+) s, search (\d+) s, "
                  r"sampling (\d+) s, retraining (\d+) s", readme)
    assert m, "README states no demo time in the expected words"
    minutes, seconds, *stages = (int(v) for v in m.groups())
    assert abs(minutes * 60 + seconds - _wall_seconds()) <= 1
    measured = json.loads((DEMO / "summary.json").read_text())["stages_s"]
    for claimed, key in zip(stages, ("lut_s", "search_s", "sample_s", "train_s")):
        assert abs(claimed - measured[key]) <= 1, key


def test_no_unmeasured_demo_duration_in_the_code():
    for path in [*(ROOT / "squeezenas").rglob("*.py"), ROOT / "README.md"]:
        assert "about ten minutes" not in path.read_text(), path
