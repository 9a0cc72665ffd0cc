"""The Python API as a notebook uses it: docs/python-api.md's tour, run as written, and its results as tables.

The tour trains a small model, converts, evaluates, benchmarks, reports and predicts through the documented
API alone; the checks below then render every result the way Jupyter does (`_repr_markdown_`) and print
it the way a terminal does, and hold the failure path to the same one-line errors as the CLI.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import requires_fashion_mnist
from tests.test_docs import ROOT, _workspace, blocks

CHECKS = """
import sys
import pipeline
for name, result in [("trained", trained), ("converted", converted), ("drift", drift), ("timing", timing),
                     ("report", report), ("folder", folder)]:
    markdown = result._repr_markdown_()
    assert markdown.count("\\n|") >= 3 and "|---" in markdown.replace(":---", "---"), (name, markdown)
    assert "\\n" not in repr(result) and len(repr(result)) < 300, (name, repr(result))
    assert len(str(result).splitlines()) >= 3, (name, str(result))
assert [v.precision for v in converted.variants] == ["float32", "int8"]
assert drift.test_images == 10000 and not drift.failed and timing.variants[0].latency[1].p50_ms > 0
assert report.recommended in ("float32", "int8") and folder.recommended == report.recommended
assert trained.written and trained.folder.name == "quick" and trained.test_accuracy > 0.5
print("CHECKED", sorted(pipeline.__all__)[:3])
"""


@requires_fashion_mnist
def test_the_documented_tour_runs_and_its_results_render_as_tables(tmp_path: Path) -> None:
    tour, failure = [b.code for b in blocks(ROOT / "docs" / "python-api.md") if b.detail == "run"]
    done = subprocess.run(
        [sys.executable, "-c", tour + CHECKS + failure],
        cwd=tmp_path,
        env=_workspace(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "CHECKED" in done.stdout
    assert "models/missing: no such model folder; train one with" in done.stdout
    assert "ImageError photo.jpg: no such file or folder" in done.stdout and "UsageError predict wants" in done.stdout
    assert "Ship model_" in done.stdout  # report.recommendation, printed by the tour
    assert not re.search(r"^[IWEF]\d{4} ", done.stderr, re.M), done.stderr[-1000:]  # TensorFlow's C++ lines stay off


def test_importing_pipeline_loads_no_tensorflow() -> None:
    lines = [
        "import sys, pipeline",
        "pipeline.ModelFolder",
        "print([m for m in ('tensorflow', 'keras') if m in sys.modules])",
    ]
    probe = "\n".join(lines)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
