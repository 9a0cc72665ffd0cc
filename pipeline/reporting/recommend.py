"""Which variant to ship, and why: the rules the report applies to the measured rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_runtime.choices import Target
from edge_runtime.folder.reader import split_variant
from edge_runtime.tflite.requirements import at_least

from ..folder import Metadata
from ..measure.intervals import interval_text
from ..measure.learning import ClassCounts, learning
from ..measure.paired import SIGNIFICANCE, two_sided
from ..training.settings import steps_per_epoch, suggested_batch_size, too_few_steps

# A variant this close to the fastest counts as "as fast"; then the smaller one wins, and
# between variants this close in size, the one that agrees with Keras more often.
AS_FAST = 1.10
AS_SMALL = 1.05
# tflite-runtime's last release: the interpreter many Raspberry Pi guides still install.
LEGACY_RUNTIME = "2.14"
# What each precision is for, beyond the numbers.
PURPOSE = {
    "float32": "the exact reference",
    "float16": "made for GPU delegates, which compute in float16; on a CPU it runs as float32",
    "dynamic": "int8 weights with float activations; integer-only accelerators cannot run it",
    "int8": "integer end to end: the one for integer-only accelerators (NPU, Edge TPU, microcontrollers)",
    "mixed": "int8 with the ops that cost agreement kept in float (see Quantization); integer-only "
    "accelerators hand its float ops back to the CPU",
    "mediapipe-float32": "for MediaPipe and the Task Library on phones (RGB in, labels inside): the exact reference",
    "mediapipe-float16": "for MediaPipe on phones: the one for the GPU delegate, which computes in float16",
    "mediapipe-int8": "for MediaPipe on phones: uint8 in and out, the one for the CPU and NNAPI",
}


@dataclass
class ReportRow:
    """One variant, everything a person compares."""

    precision: str
    file: str
    bytes: int
    size_ratio: float | None  # x of float32; None when there is no float32 variant
    accuracy: float | None = None
    change_pp: float | None = None
    agreement: float | None = None
    mean_abs_diff: float | None = None
    p50_ms: dict[int, float] = field(default_factory=dict)
    p99_ms: dict[int, float] = field(default_factory=dict)
    speedup: dict[int, float] = field(default_factory=dict)  # float32 p50 / this p50
    peak_memory_mb: float | None = None
    within_budget: bool | None = None
    min_runtime: str | None = None  # oldest TFLite runtime that runs the file
    # On a small test set (reporting.uncertainty): 95% intervals, and (images only Keras gets right, only this one)
    accuracy_interval: tuple[float, float] | None = None
    agreement_interval: tuple[float, float] | None = None
    paired: tuple[int, int] | None = None

    @property
    def change_p(self) -> float | None:
        """Two-sided McNemar p of the change against Keras (None: not tested, the test set is not small)."""
        return two_sided(*self.paired) if self.paired is not None else None

    @property
    def within_noise(self) -> bool:
        """A change against Keras that McNemar's test does not find: not significant."""
        return self.change_p is not None and self.change_p >= SIGNIFICANCE and bool(self.change_pp)

    def noise_note(self) -> str:
        """` (not significant: 1 image only Keras gets right, 0 only int8; McNemar p=1)` on a small test set."""
        if self.paired is None or not self.change_pp:
            return ""
        only_keras, only_this = self.paired
        verdict = "not significant" if self.within_noise else "significant"
        return (
            f" ({verdict}: {only_keras:,} image(s) only Keras gets right, {only_this:,} only {self.precision}; "
            f"McNemar p={self.change_p:.2g})"
        )

    def runs_on(self, runtime: str) -> bool:
        return self.min_runtime is None or at_least(runtime, self.min_runtime)

    @property
    def size_kb(self) -> float:
        return self.bytes / 1024


INSTRUCTIONS = "M instructions"  # the unit of an emulated CPU's cost (millions of instructions per image)


def recommend(rows: list[ReportRow], max_drop: float, threads: int | None, unit: str = "ms") -> tuple[str | None, str]:
    """The smallest variant within the accuracy budget that is as fast as the fastest such one.

    Only plain TFLite variants are candidates (what edge_runtime picks from a folder); phone variants are listed.
    `p50_ms[threads]` is the cost: milliseconds, or with ``unit=INSTRUCTIONS`` millions of instructions per image.
    """
    measured = [r for r in rows if r.accuracy is not None and split_variant(r.precision)[0] == Target.TFLITE]
    if not measured and any(r.accuracy is not None for r in rows):
        return None, (
            "Only MediaPipe variants are here: mediapipe-int8 for the CPU and NNAPI, mediapipe-float16 for the GPU "
            "delegate. For edge_runtime's pick, convert with `--target tflite` too."
        )
    if not measured:
        return None, "No accuracy was measured, so nothing can be recommended: run `edge-pipeline evaluate`."
    within = [r for r in measured if r.within_budget]
    if not within:
        least = max(measured, key=lambda r: r.change_pp or 0.0)
        return None, (
            f"No variant stays within the {max_drop:g} pp accuracy budget; the least lossy is {least.precision} "
            f"({least.change_pp:+.2f} pp{least.noise_note()}). Raise --max-drop or ship the Keras model's float32 "
            "conversion with care."
        )
    timed = [r for r in within if threads in r.p50_ms]
    if timed:
        fastest = min(r.p50_ms[threads] for r in timed)
        candidates = [r for r in timed if r.p50_ms[threads] <= fastest * AS_FAST]
        speed_note = (
            " that is as fast as the fastest (within 10%)"
            if unit == "ms"
            else " that costs as few instructions as the cheapest (within 10%)"
        )
    else:
        candidates = within
        speed_note = ""
    smallest = min(r.bytes for r in candidates)
    pick = max((r for r in candidates if r.bytes <= smallest * AS_SMALL), key=lambda r: (r.agreement or 0.0, -r.bytes))
    why = (
        f"the smallest variant within your accuracy budget{speed_note}; "
        "of those within 5% of that size, the one agreeing most with Keras"
    )
    return pick.precision, (
        f"Ship {pick.file} ({pick.precision}): {why}. It is {_size_claim(pick)}, {_speed_claim(pick, threads, unit)}, "
        f"{pick.change_pp:+.2f} pp top-1 accuracy against Keras{pick.noise_note()} (budget {max_drop:g} pp), and "
        f"agrees with Keras on {pick.agreement:.2%}{interval_text(pick.agreement_interval)} of test images."
    )


def _size_claim(row: ReportRow) -> str:
    if row.size_ratio is None:
        return f"{row.size_kb:,.1f} KB"
    return f"{row.size_ratio:.2f}x the size of float32 ({row.size_kb:,.1f} KB)"


def _speed_claim(row: ReportRow, threads: int | None, unit: str = "ms") -> str:
    if threads not in row.p50_ms:
        return "latency not measured (run `edge-pipeline benchmark`)"
    if unit != "ms":
        cost = f"{row.p50_ms[threads]:.3f} {unit} per image"
        return (
            f"{row.speedup[threads]:.2f}x fewer instructions than float32 ({cost})" if threads in row.speedup else cost
        )
    plural = "s" if threads != 1 else ""
    latency = f"{row.p50_ms[threads]:.3f} ms p50 at {threads} thread{plural}"
    return f"{row.speedup[threads]:.2f}x float32's speed ({latency})" if threads in row.speedup else latency


def alternatives(rows: list[ReportRow], recommended: str | None, threads: int | None, unit: str = "ms") -> list[str]:
    """One line per other variant: how it compares with the recommended one (in the pick's own cost: latency, or
    instructions on an emulated CPU), and what it is for."""
    cost = "latency" if unit == "ms" else "instructions"
    pick = next((r for r in rows if r.precision == recommended), None)
    lines = []
    for row in rows:
        if pick is None or row is pick:
            continue
        parts = [f"{row.bytes / pick.bytes:.2f}x its size"]
        if threads in row.p50_ms and threads in pick.p50_ms:
            parts.append(f"{row.p50_ms[threads] / pick.p50_ms[threads]:.2f}x its {cost}")
        if row.accuracy is not None:
            noise = " (n.s.)" if row.within_noise else ""
            parts.append(f"{row.change_pp:+.2f} pp against Keras{noise}, agreeing on {row.agreement:.2%}")
        if row.within_budget is False:
            parts.append("outside the accuracy budget")
        lines.append(f"{row.precision}: {', '.join(parts)}; {PURPOSE.get(row.precision, '')}.")
    return lines


def runtime_notes(
    rows: list[ReportRow], recommended: str | None, max_drop: float, threads: int | None
) -> tuple[list[str], str | None]:
    """Which runtime the recommendation needs, and the pick for tflite-runtime 2.14 when that differs."""
    pick = next((r for r in rows if r.precision == recommended), None)
    if pick is None:
        return [], None
    needs = pick.min_runtime or "unknown"
    if pick.runs_on(LEGACY_RUNTIME):
        return [
            f"{pick.file} needs TFLite runtime {needs} or newer: ai-edge-litert, TensorFlow, and tflite-runtime "
            f"{LEGACY_RUNTIME} (the legacy interpreter's last release) all run it."
        ], pick.precision
    lines = [
        f"{pick.file} needs TFLite runtime {needs} or newer (ai-edge-litert, or TensorFlow {needs}+); "
        f"tflite-runtime {LEGACY_RUNTIME}, the legacy interpreter's last release, cannot run it:"
    ]
    legacy, _ = recommend([r for r in rows if r.runs_on(LEGACY_RUNTIME)], max_drop, threads)
    if legacy is None:
        return [
            *lines,
            f"none of the variants it runs is within the budget; convert with "
            f"`edge-pipeline convert --target-runtime {LEGACY_RUNTIME}`.",
        ], None
    file = next(r.file for r in rows if r.precision == legacy)
    return [
        *lines,
        f"there, ship {file} ({legacy}), the same choice among the variants it runs, or convert with "
        f"`--target-runtime {LEGACY_RUNTIME}`.",
    ], legacy


def chance_verdict(metadata: Metadata, keras_accuracy: float | None, counts: ClassCounts | None = None) -> str | None:
    """'Do not ship' with the reason when the Keras model itself did not learn (`measure.learning`: near chance,
    or collapsed onto one class); `counts` are its test answers per class, when known."""
    classes = len(metadata.labels)
    if keras_accuracy is None:
        return None
    verdict = learning(keras_accuracy, classes, counts)
    if verdict.learned:
        return None
    training = metadata.training
    batch = int(training.get("hyperparameters", {}).get("batch_size") or 0)
    train_images = int(metadata.dataset.get("sizes", {}).get("train") or 0)
    steps = steps_per_epoch(train_images, batch) if batch and train_images else None
    why = (
        f"it trained {training.get('epochs_run')} epoch(s) of {steps} step(s) (batch {batch} on {train_images:,} "
        "images)"
        if steps
        else "it did not learn"
    )
    hint = (
        f"; train with a smaller --batch-size (e.g. {suggested_batch_size(train_images)}) or more --epochs"
        if steps and too_few_steps(train_images, batch) and suggested_batch_size(train_images) < batch
        else "; train longer or check the data"
    )
    reason = verdict.reason(metadata.labels)
    return f"Do not ship: the Keras model is {reason}, so every variant of it is too: {why}{hint}."
