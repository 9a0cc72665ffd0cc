"""`compare NEW --baseline OLD`: a regression gate for CI, where a difference inside measurement noise is not one.

Each folder's shipped variant (its `recommended`, or `--variant`) is checked against the baseline's:

- **accuracy**, paired on the same test images (their fingerprints must match): McNemar's exact test on
  the images only one of the two gets right. A regression is a drop past `--max-drop` points that the
  test also finds (one-sided p < 0.05): a smaller test set cannot fail a model on noise.
- **latency**, both files re-timed here in interleaved rounds (the machine's noise hits both alike): a
  regression is a median slowdown past `--max-slowdown` percent with the new file slower in at least three
  rounds of four. Emulated Arm instruction counts in both folders (`benchmark --emulate`) are exact: any
  growth past the budget is a regression, no test needed.
- **size**, exact: growth past `--max-growth` percent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_runtime.backends import load_interpreter
from edge_runtime.bench import fill_inputs, time_invokes

from ..measure.evaluate import DEFAULT_MAX_DROP
from ..output.tables import Shown, Table
from ..progress import Reporter
from .folders import FolderResults

SIGNIFICANCE = 0.05  # one-sided, for McNemar's test
SLOWER_SHARE = 0.75  # of the interleaved rounds in which the new file must be slower


@dataclass(frozen=True)
class Budgets:
    """How much worse a new model may be than its baseline before the gate fails."""

    max_drop: float = DEFAULT_MAX_DROP  # accuracy, percentage points
    max_slowdown: float = 10.0  # latency (or emulated instructions), percent
    max_growth: float = 10.0  # file size, percent
    threads: int = 1  # interpreter threads for the re-timing
    warmup: int = 20
    runs: int = 400
    rounds: int = 20


def mcnemar_p(only_old: int, only_new: int) -> float:
    """One-sided exact McNemar p-value that the new model is worse: P(X >= only_old), X ~ Binomial(n, 1/2),
    n the images exactly one of the two gets right."""
    n = only_old + only_new
    if n == 0:
        return 1.0
    if n > 20_000:  # the normal approximation, with continuity correction
        z = (only_old - n / 2 - 0.5) / math.sqrt(n / 4)
        return 0.5 * math.erfc(z / math.sqrt(2))
    return sum(math.comb(n, k) for k in range(only_old, n + 1)) / 2**n


@dataclass
class Check:
    """One measured comparison and its verdict."""

    metric: str
    baseline: str
    new: str
    change: str
    budget: str
    regression: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(repr=False)
class GateResult(Shown):
    """Every check of NEW against the baseline; `regressions` lists the failed ones."""

    new: str
    baseline: str
    variants: tuple[str, str]  # (baseline's, new's) shipped variant
    checks: list[Check] = field(default_factory=list)

    @property
    def regressions(self) -> list[Check]:
        return [c for c in self.checks if c.regression]

    def summary(self) -> str:
        if not self.regressions:
            return f"{self.new} against {self.baseline}: no regression ({len(self.checks)} checks)"
        found = "; ".join(f"{c.metric} {c.change} (budget {c.budget})" for c in self.regressions)
        return f"{self.new} regresses against {self.baseline}: {found}"

    def table(self) -> Table:
        rows = [[c.metric, c.baseline, c.new, c.change, c.budget, "REGRESSION" if c.regression else "ok", c.why]
                for c in self.checks]  # fmt: skip
        title = f"{self.new} ({self.variants[1]}) against the baseline {self.baseline} ({self.variants[0]})"
        return Table(title, ["check", "baseline", "new", "change", "budget", "verdict", "why"], rows, [self.summary()])

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "baseline": self.baseline,
            "variants": {"baseline": self.variants[0], "new": self.variants[1]},
            "passed": not self.regressions,
            "checks": [c.to_dict() for c in self.checks],
            "regressions": [c.metric for c in self.regressions],
        }


def _accuracy(old: FolderResults, new: FolderResults, variants: tuple[str, str], budget: float) -> Check:
    if old.fingerprint is None or new.fingerprint is None:
        return Check("accuracy", "-", "-", "not checked", f"{budget:g} pp", True,
                     "cannot be checked: evaluate both folders")  # fmt: skip
    if old.fingerprint != new.fingerprint:
        return Check("accuracy", "-", "-", "not checked", f"{budget:g} pp", True,
                     "cannot be checked: the two were evaluated on different test images")  # fmt: skip
    labels, before = old.predictions.get("labels"), old.predictions.get(variants[0])
    after = new.predictions.get(variants[1])
    if labels is None or before is None or after is None:
        return Check("accuracy", "-", "-", "not checked", f"{budget:g} pp", True,
                     "cannot be checked: predictions.json is missing; re-run evaluate")  # fmt: skip
    old_right, new_right = before == labels, after == labels
    only_old, only_new = int((old_right & ~new_right).sum()), int((new_right & ~old_right).sum())
    p = mcnemar_p(only_old, only_new)
    drop = (old_right.mean() - new_right.mean()) * 100
    regression = bool(drop > budget and p < SIGNIFICANCE)
    why = (f"{only_old} images only the baseline gets right, {only_new} only the new one (McNemar p={p:.3g}"
           + (")" if regression or drop <= budget else f", within noise at {len(labels):,} images)"))  # fmt: skip
    return Check("accuracy", f"{old_right.mean():.2%}", f"{new_right.mean():.2%}", f"{-drop:+.2f} pp",
                 f"{budget:g} pp", regression, why)  # fmt: skip


def retime(paths: tuple[Any, Any], budgets: Budgets, reporter: Reporter) -> tuple[list[float], list[float]]:
    """Per-round p50 (ms) of the two files, interleaved (the order alternating each round)."""
    interpreters = []
    for path in paths:
        interpreter, _ = load_interpreter(path, budgets.threads)
        fill_inputs(interpreter)
        time_invokes(interpreter, budgets.warmup)
        interpreters.append(interpreter)
    per_round = max(1, budgets.runs // budgets.rounds)
    medians: tuple[list[float], list[float]] = ([], [])
    with reporter.task("re-timing both, interleaved", total=budgets.rounds) as task:
        for index in range(budgets.rounds):
            for which in (0, 1) if index % 2 == 0 else (1, 0):
                medians[which].append(float(np.median(time_invokes(interpreters[which], per_round))))
            task.advance()
    return medians


def _latency(old_ms: list[float], new_ms: list[float], budgets: Budgets) -> Check:
    ratios = np.asarray(new_ms) / np.asarray(old_ms)
    median, low, high = (float(np.quantile(ratios, q)) for q in (0.5, 1 - SLOWER_SHARE, SLOWER_SHARE))
    regression = bool((median - 1) * 100 > budgets.max_slowdown and low > 1.0)
    why = f"new/baseline per round: median {median:.3f}, middle half {low:.3f}..{high:.3f} ({len(ratios)} rounds)"
    return Check(f"latency @{budgets.threads}t (here)", f"{np.median(old_ms):.3f} ms", f"{np.median(new_ms):.3f} ms",
                 f"{(median - 1) * 100:+.1f}%", f"{budgets.max_slowdown:g}%", regression, why)  # fmt: skip


def _exact(metric: str, old: float, new: float, budget: float, unit: str, scale: float = 1.0) -> Check:
    growth = (new / old - 1) * 100 if old else 0.0
    return Check(metric, f"{old / scale:,.2f}{unit}", f"{new / scale:,.2f}{unit}", f"{growth:+.1f}%", f"{budget:g}%",
                 bool(growth > budget), "exact (no noise)")  # fmt: skip


def gate(old: FolderResults, new: FolderResults, variants: tuple[str, str], budgets: Budgets,
         timings: tuple[list[float], list[float]]) -> GateResult:  # fmt: skip
    """Every check of `new`'s shipped variant against `old`'s."""
    result = GateResult(new.name, old.name, variants)
    before, after = old.row(variants[0]), new.row(variants[1])
    assert before is not None and after is not None
    result.checks.append(_accuracy(old, new, variants, budgets.max_drop))
    result.checks.append(_latency(*timings, budgets))
    for device in sorted(before.emulated.keys() & after.emulated.keys()):
        result.checks.append(_exact(f"{device} (emulated)", before.emulated[device], after.emulated[device],
                                    budgets.max_slowdown, " M instr", 1e6))  # fmt: skip
    result.checks.append(_exact("size", before.size_kb, after.size_kb, budgets.max_growth, " KB"))
    return result
