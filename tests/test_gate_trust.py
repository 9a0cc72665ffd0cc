"""The regression gate measures; it never believes a record (#28, #31).

Each case is a real folder (the session's trained cnn, `trained_folder`, or the shipped fashion-mnist-cnn)
changed the way an attacker or a stale re-convert leaves it, gated with the real CLI: a replaced variant
with updated checksums, a forged predictions.json, a lying size, a missing emulated count, hostile strings
for the markdown. The gate runs both files through edge_runtime on the same 10,000 test images (about a
second for two dynamic variants) and re-times them briefly (`--runs 20 --rounds 4`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.devices.emulated_bench import EmulatedBenchmark
from pipeline.devices.instructions import CPUS
from pipeline.folder import BENCHMARK_JSON, PREDICTIONS_JSON, FolderStore
from pipeline.surface.cli.app import main
from tests.conftest import ROOT, requires_fashion_mnist

pytestmark = requires_fashion_mnist

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
FAST = ["--runs", "20", "--rounds", "4", "--threads", "1"]
HOSTILE = "<img src=x onerror=alert(1)> **GATE PASSED**"
Folders = tuple[Path, Path]  # (new, baseline)


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _edit_metadata(folder: Path, edit: Callable[[dict], None]) -> None:
    path = folder / "metadata.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def _replace_variant(folder: Path, variant: str, replacement: Path) -> None:
    """Another file in the variant's place, its sha256 and bytes in metadata.json updated as a re-convert does."""
    content = replacement.read_bytes()
    (folder / f"model_{variant}.tflite").write_bytes(content)

    def edit(data: dict) -> None:
        data["variants"][variant].update(sha256=hashlib.sha256(content).hexdigest(), bytes=len(content))

    _edit_metadata(folder, edit)


def _forge_predictions(folder: Path) -> None:
    """predictions.json saying every variant gets every test image right, committed by the folder's own writer."""
    store = FolderStore(folder)
    with store.writing("forge"):
        metadata = store.load()
        honest = json.loads((folder / PREDICTIONS_JSON).read_text())
        forged = {**honest, "variants": {v: honest["labels"] for v in honest["variants"]}}
        store.commit_json(PREDICTIONS_JSON, forged, metadata)


def _count(folder: Path, variant: str, instructions: float, sha256: str | None = None) -> None:
    """An emulated Pi 5 count of the variant in benchmark.json, as `benchmark --emulate pi5` stores it."""
    store = FolderStore(folder)
    with store.writing("benchmark --emulate"):
        metadata = store.load()
        cpu = CPUS["cortex-a76"]
        record = {"file": f"model_{variant}.tflite", "sha256": sha256 or metadata.variants[variant].sha256,
                  "instructions": instructions}  # fmt: skip
        result = EmulatedBenchmark(cpu, {}, {"cpu": cpu.name, "threads": 1, "invokes": 3})
        result.interpreters["litert"] = {"version": "2.3.0", "variants": {variant: record}}
        store.store_device(BENCHMARK_JSON, cpu.device_name, result.to_dict(), metadata)


def _timed_on(folder: Path, cpu: str) -> None:
    """benchmark.json from a machine whose CPU name is `cpu` (a string anyone can write)."""
    store = FolderStore(folder)
    with store.writing("benchmark"):
        metadata = store.load()
        sha = metadata.variants["dynamic"].sha256
        timing = {"sha256": sha, "threads": {"1": {"p50_ms": 0.1, "p99_ms": 0.2}}}
        store.commit_json(BENCHMARK_JSON, {"machine": {"cpu": cpu}, "variants": {"dynamic": timing}}, metadata)


# --- setups: (new, baseline) from the trained cnn and a scratch folder -----------------------------------


def replaced_by_a_worse_file(trained: Path, tmp: Path) -> Folders:
    """The shipped folder (92.6%), its dynamic file replaced by the small cnn's; its drift.json still says 92.63%."""
    new = _copy(SHIPPED, tmp / "re-converted")
    _replace_variant(new, "dynamic", trained / "model_dynamic.tflite")
    return new, _copy(SHIPPED, tmp / "production")


def forged_predictions(trained: Path, tmp: Path) -> Folders:
    new = _copy(trained, tmp / "forged")
    _forge_predictions(new)
    return new, _copy(SHIPPED, tmp / "production")


def forged_predictions_of_the_same_file(trained: Path, tmp: Path) -> Folders:
    new = _copy(trained, tmp / "forged")
    _forge_predictions(new)
    return new, trained


def lying_size(trained: Path, tmp: Path) -> Folders:
    new = _copy(trained, tmp / "tiny-on-paper")
    _edit_metadata(new, lambda data: data["variants"]["dynamic"].update(bytes=1024))
    return new, trained


def classes_reordered(trained: Path, tmp: Path) -> Folders:
    """metadata.json's labels reversed: every index scores as before, every name a device answers is wrong."""
    new = _copy(trained, tmp / "renamed")
    _edit_metadata(new, lambda data: data["labels"].reverse())
    return new, trained


def baseline_counted(trained: Path, tmp: Path) -> Folders:
    baseline = _copy(trained, tmp / "production")
    _count(baseline, "dynamic", 12e6)
    return _copy(trained, tmp / "uncounted"), baseline


def stale_count(trained: Path, tmp: Path) -> Folders:
    """The candidate's count was made of another file (its sha256): it does not count."""
    new, baseline = baseline_counted(trained, tmp)
    _count(new, "dynamic", 12e6, sha256="0" * 64)
    return new, baseline


def both_counted(trained: Path, tmp: Path) -> Folders:
    new, baseline = baseline_counted(trained, tmp)
    _count(new, "dynamic", 12.5e6)
    return new, baseline


def other_test_images(trained: Path, tmp: Path) -> Folders:
    new = _copy(trained, tmp / "elsewhere")
    _edit_metadata(new, lambda data: data["dataset"].update(name="mnist", data_dir=str(tmp / "no-data")))
    return new, trained


def honest_copy(trained: Path, tmp: Path) -> Folders:
    return _copy(trained, tmp / "retrained"), trained


GATE_CASES: list[tuple[str, Callable[[Path, Path], Folders], list[str], int, str]] = [
    ("a replaced file, its checksum updated", replaced_by_a_worse_file, [], 1, "accuracy -"),
    ("forged predictions.json (all right)", forged_predictions, [], 1, "accuracy -"),
    ("forged predictions.json, the same file", forged_predictions_of_the_same_file, [], 0, "no regression"),
    ("a size of 1 KB in metadata.json", lying_size, [], 0, "no regression"),
    ("the class names reordered", classes_reordered, [], 1, "accuracy -"),
    ("no emulated count on the candidate", baseline_counted, [], 1, "cortex-a76/litert (emulated) cannot be checked"),
    ("... allowed: emulated", baseline_counted, ["--allow-missing", "emulated"], 0, "1 missing as --allow-missing"),
    ("... allowed: that CPU", baseline_counted, ["--allow-missing", "cortex-a76"], 0, "no regression"),
    ("... allowed: another CPU", baseline_counted, ["--allow-missing", "cortex-a53"], 1, "cannot be checked"),
    ("a count of another file", stale_count, [], 1, "cortex-a76/litert (emulated) cannot be checked"),
    ("counts in both, within budget", both_counted, [], 0, "no regression"),
    ("test images that cannot be loaded", other_test_images, [], 1, "accuracy cannot be checked ("),
    ("... allowed: accuracy", other_test_images, ["--allow-missing", "accuracy"], 0, "no regression"),
    ("an unknown check", honest_copy, ["--allow-missing", "speed"], 2, "--allow-missing 'speed' is not one of"),
    ("an honest copy of the baseline", honest_copy, [], 0, "no regression (4 checks)"),
]


@pytest.mark.parametrize(
    ("setup", "extra", "code", "text"), [c[1:] for c in GATE_CASES], ids=[c[0] for c in GATE_CASES]
)
def test_the_gate_measures_and_never_believes(
    setup: Callable[[Path, Path], Folders],
    extra: list[str],
    code: int,
    text: str,
    trained_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new, baseline = setup(trained_folder, tmp_path)
    args = ["compare", str(new), "--baseline", str(baseline), "--variant", "dynamic", *FAST, *extra]
    returned = main([*args, "--json", "--output", str(tmp_path / "gate")])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("edge-pipeline:")]
    assert returned == code, err[-2000:]
    if code == 2:
        assert len(lines) == 1 and text in lines[0] and "accuracy, latency, size, emulated, cortex-a76" in lines[0]
        return
    verdict = json.loads(out)["gates"][0]
    assert text in verdict["summary"] and verdict["passed"] is (code == 0), verdict["summary"]
    assert lines == ([f"edge-pipeline: error: {verdict['summary']}"] if code else []), err[-2000:]
    checks = {c["metric"]: c for c in verdict["checks"]}
    trained = json.loads((trained_folder / "drift.json").read_text())["variants"]["dynamic"]
    if setup in (forged_predictions, forged_predictions_of_the_same_file):  # what the file really scores
        assert checks["accuracy"]["new"] == f"{trained['accuracy']:.2%}" != "100.00%"
    if setup is replaced_by_a_worse_file:
        assert checks["accuracy"]["baseline"] == "92.63%" and checks["accuracy"]["new"] == f"{trained['accuracy']:.2%}"
    if setup is lying_size:  # the file's own size, not the record's
        real = (new / "model_dynamic.tflite").stat().st_size / 1024
        assert checks["size"]["new"] == f"{real:,.2f} KB" and checks["size"]["change"] == "+0.0%"
    if setup is both_counted:
        assert checks["cortex-a76/litert (emulated)"]["change"] == "+4.2%"


def test_hostile_strings_are_shown_not_rendered(
    trained_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder named like markup and a CPU string that breaks tables: escaped in comparison.md and the summary."""
    new, baseline = _copy(trained_folder, tmp_path / HOSTILE), _copy(trained_folder, tmp_path / "production")
    _timed_on(new, "EPYC `x` | forged |\n| **GATE PASSED** | row |")
    _timed_on(baseline, "Other CPU")
    summary = tmp_path / "summary.md"
    args = ["compare", str(new), "--baseline", str(baseline), "--variant", "dynamic", *FAST]
    assert main([*args, "--output", str(tmp_path / "gate"), "--summary", str(summary)]) == 0, capsys.readouterr().err
    for text in (summary.read_text(), (tmp_path / "gate" / "comparison.md").read_text()):
        assert "<img" not in text and "**GATE PASSED**" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
        assert "\\*\\*GATE PASSED\\*\\*" in text and "EPYC \\`x\\` \\| forged \\|\\\\x0a\\|" in text
        for table in re.findall(r"(?:^\|.*\|$\n?)+", text, re.M):  # every row as many cells as its header
            cells = [len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()]
            assert len(set(cells)) == 1, table


def test_report_md_escapes_the_folders_strings(folder_copy: Path) -> None:
    import pipeline
    from pipeline.reporting.build import ReportConfig, write_report

    _edit_metadata(folder_copy, lambda data: data.update(name=HOSTILE))
    pipeline.benchmark(folder_copy, threads="1", runs=5, rounds=1, progress=False)
    store = FolderStore(folder_copy)
    with store.writing("benchmark"):  # the CPU name as another machine's benchmark.json may hold it
        bench = json.loads((folder_copy / BENCHMARK_JSON).read_text())
        bench["machine"]["cpu"] = "EPYC | x |\n<script>"
        store.commit_json(BENCHMARK_JSON, bench, store.load())
    write_report(ReportConfig(folder=folder_copy, samples=0))
    report = (folder_copy / "report.md").read_text()
    assert report.startswith("# &lt;img src=x onerror=alert(1)&gt; \\*\\*GATE PASSED\\*\\*: which variant to ship")
    assert (
        "<img" not in report and "<script>" not in report and "Machine: EPYC \\| x \\|\\\\x0a&lt;script&gt;" in report
    )


def test_compare_shows_the_shipped_folder_measured_and_writes_out_of_the_checkout(
    trained_folder: Path, tmp_path: Path
) -> None:
    """#31: the shipped folder's accuracy is measured (not read from its predictions.json). The default output is
    models/comparison (ignored by git), and the plot says which folder it leaves out, and why."""
    command = [sys.executable, "-m", "pipeline", "compare", str(trained_folder), str(SHIPPED)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((tmp_path / "models" / "comparison" / "comparison.json").read_text())
    drift = json.loads((SHIPPED / "drift.json").read_text())["variants"]
    shipped = {r["variant"]: r["accuracy"] for r in data["rows"] if r["folder"] == "fashion-mnist-cnn"}
    assert shipped == {variant: row["accuracy"] for variant, row in drift.items()}  # what evaluate measured: 92.67%
    assert f"{trained_folder.name} is left out of comparison.png: no latency" in " ".join(data["notes"])
    ignored = subprocess.run(["git", "check-ignore", "-q", "models/comparison/comparison.md"], cwd=ROOT, check=False)
    assert ignored.returncode == 0
