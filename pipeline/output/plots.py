"""Matplotlib figures for people: training curves, the trade-off chart, confusion, sample grid.

Each function writes one PNG to the path it is given (stages pass a temporary path and
rename it into place).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RIGHT = "tab:blue"
WRONG = "tab:red"
DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def history_plot(history: dict[str, list[float]], path: Path, title: str = "training") -> None:
    """Loss and accuracy per epoch, training and validation, side by side."""
    plt = _pyplot()
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric, label in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        if metric in history:
            axis.plot(epochs, history[metric], "o-", label=f"training {label}")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], "s-", label=f"validation {label}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    best = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else None
    if best is not None:
        for axis in axes:
            axis.axvline(best, color="gray", linestyle=":", label="best epoch")
    figure.suptitle(title + (f" (best epoch {best})" if best else ""))
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)


@dataclass(frozen=True)
class TradeoffPoint:
    """One marker of the trade-off chart."""

    label: str
    latency_ms: float
    accuracy: float  # 0..1
    size_kb: float
    recommended: bool = False
    group: str = ""


MARKERS = {"float32": "o", "float16": "s", "dynamic": "^", "int8": "D"}


def _scatter(axis: Any, points: Sequence[TradeoffPoint], colors: Any, groups: list[str]) -> list[Any]:
    """Draw each point (area by size, ringed when recommended); the legend handles of a single model's variants."""
    from matplotlib.lines import Line2D

    several = len(groups) > 1
    largest = max((p.size_kb for p in points), default=1.0) or 1.0
    handles = []
    for index, p in enumerate(points):
        color = colors((groups.index(p.group) if several else index) % 10)
        marker, area = MARKERS.get(p.label, "o"), 80 + 1500 * p.size_kb / largest
        x, y = [p.latency_ms], [p.accuracy * 100]
        axis.scatter(x, y, s=area, marker=marker, color=color, alpha=0.45, edgecolors="black", linewidths=0.8)
        axis.scatter(x, y, s=12, marker=marker, color="black")  # the exact spot
        if p.recommended:
            axis.scatter(x, y, s=area * 1.8, facecolors="none", edgecolors="green", linewidths=2.5)
        if not several:
            label = (
                f"{p.label}{' (recommended)' if p.recommended else ''}: {p.size_kb:,.0f} KB, "
                f"{p.accuracy:.2%}, {p.latency_ms:.3f} ms"
            )
            handles.append(Line2D([], [], marker=marker, color=color, linestyle="", markersize=9, label=label))
    return handles


def _group_legend(points: Sequence[TradeoffPoint], colors: Any, groups: list[str]) -> list[Any]:
    """Several models: colour is the model, shape the precision, a green ring the recommended one."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", color=colors(i % 10), linestyle="", markersize=9, label=g)
        for i, g in enumerate(groups)
    ]
    shapes = list(dict.fromkeys(p.label for p in points))
    handles += [
        Line2D([], [], marker=MARKERS.get(s, "o"), color="gray", linestyle="", markersize=8, label=s) for s in shapes
    ]
    if any(p.recommended for p in points):
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                markerfacecolor="none",
                markeredgecolor="green",
                markeredgewidth=2.5,
                linestyle="",
                markersize=11,
                label="recommended",
            )
        )
    return handles


def _axes(axis: Any, points: Sequence[TradeoffPoint]) -> None:
    """Log latency when the spread is wide; accuracy limits with a margin."""
    positives = [p.latency_ms for p in points if p.latency_ms > 0]
    if positives and max(positives) / min(positives) > 20:
        axis.set_xscale("log")
    elif positives:
        axis.set_xlim(0, max(positives) * 1.25)
    accuracies = [p.accuracy * 100 for p in points]
    if accuracies:
        spread = max(accuracies) - min(accuracies)
        axis.set_ylim(min(accuracies) - max(0.4, spread * 0.25), max(accuracies) + max(0.4, spread * 0.25))


def tradeoff_plot(
    points: Sequence[TradeoffPoint],
    path: Path,
    title: str,
    latency_label: str = "latency p50 (ms)",
    front: Sequence[TradeoffPoint] = (),
) -> None:
    """Accuracy against latency; marker area grows with model size; the recommended one ringed; `front` (the
    Pareto front: nothing else is both as accurate and as fast) joined by a dashed staircase.

    Points are told apart by colour (one model: by variant; several: by model) and marker
    shape (precision), with the numbers in a legend beside the plot, so that variants at the
    same latency do not hide each other's labels.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(11, 6))
    groups = list(dict.fromkeys(p.group for p in points))
    colors = plt.get_cmap("tab10")
    handles = _scatter(axis, points, colors, groups)
    several = len(groups) > 1
    if several:
        handles += _group_legend(points, colors, groups)
    if front:
        ordered = sorted(front, key=lambda p: p.latency_ms)
        (line,) = axis.step([p.latency_ms for p in ordered], [p.accuracy * 100 for p in ordered], where="post",
                            linestyle="--", color="dimgray", linewidth=1.2, label="Pareto front")  # fmt: skip
        handles.append(line)
    legend_title = "model (colour), precision (shape)" if several else "variant: size, accuracy, p50"
    axis.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False, title=legend_title
    )
    axis.set_xlabel(latency_label + " - lower is better")
    axis.set_ylabel("test accuracy (%) - higher is better")
    axis.set_title(title + " - marker area = model size")
    axis.grid(alpha=0.3)
    _axes(axis, points)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)


def confusion_plot(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str) -> None:
    """Confusion matrix as row-normalised colours with counts written in."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    n = len(labels)
    size = max(5.0, min(14.0, 0.55 * n + 2))
    figure, axis = plt.subplots(figsize=(size + 1, size))
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    image = axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    axis.text(
                        j,
                        i,
                        str(int(matrix[i, j])),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black",
                    )
        axis.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
        axis.set_yticks(range(n), labels, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)


def samples_plot(
    images: np.ndarray,
    true: Sequence[int],
    predicted: Sequence[int],
    scores: Sequence[float],
    labels: Sequence[str],
    path: Path,
    title: str,
    columns: int = 6,
) -> None:
    """A grid of test images titled 'predicted (score)' and 'true', blue when right, red when wrong."""
    plt = _pyplot()
    count = len(images)
    rows = max(1, (count + columns - 1) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.9, rows * 2.2))
    for index, axis in enumerate(np.atleast_1d(axes).ravel()):
        axis.axis("off")
        if index >= count:
            continue
        image = images[index]
        axis.imshow(
            image[:, :, 0] if image.shape[-1] == 1 else image,
            cmap="gray" if image.shape[-1] == 1 else None,
            vmin=0,
            vmax=255,
        )
        right = predicted[index] == true[index]
        axis.set_title(
            f"{labels[predicted[index]]} ({scores[index]:.0%})\ntrue: {labels[true[index]]}",
            fontsize=8,
            color=RIGHT if right else WRONG,
        )
    correct = sum(int(p == t) for p, t in zip(predicted, true, strict=True))
    figure.suptitle(f"{title}: {correct}/{count} right (blue right, red wrong)")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)


def layer_error_plot(names: Sequence[str], snr_db: Sequence[float], path: Path, title: str) -> None:
    """Signal-to-noise of each int8 layer against float, in graph order, worst in red."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(max(6.0, 0.28 * len(names) + 2), 4))
    values = np.minimum(np.asarray(snr_db, dtype=float), 80.0)
    cut = np.sort(values)[min(2, len(values) - 1)] if len(values) else 0
    axis.bar(range(len(values)), values, color=[WRONG if v <= cut else RIGHT for v in values])
    axis.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    axis.set_ylabel("SNR (dB) - higher is closer to float")
    axis.set_title(title + "\n(the three worst in red)", fontsize=10)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)


def sweep_plot(rows: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """int8 agreement per calibration size: every seed as a dot, the mean as a line."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    counts = sorted({row["samples"] for row in rows})
    for row in rows:
        axis.plot(row["samples"], row["agreement"], "o", color=RIGHT, alpha=0.6)
    means = [np.mean([r["agreement"] for r in rows if r["samples"] == c]) for c in counts]
    axis.plot(counts, means, "-", color="black", label="mean over seeds")
    axis.set_xscale("log")
    axis.set_xticks(counts, [str(c) for c in counts])
    axis.set_xlabel("calibration images")
    axis.set_ylabel("int8 agreement with Keras (%)")
    axis.set_title(title)
    axis.legend(frameon=False)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)
