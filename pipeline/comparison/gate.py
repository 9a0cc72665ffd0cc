"""`compare NEW --baseline OLD`: a regression gate for CI, where a difference inside measurement noise is not one.

The gate measures; it believes no record a folder could have been given. Each folder's shipped variant (its
`recommended`, or `--variant`) is checked against the baseline's:

- **accuracy**, both files run here through edge_runtime on the same test images (their fingerprints, and a
  named dataset's pixels, must match): McNemar's exact test on the images only one of the two gets right. A
  regression is a drop past `--max-drop` points that the test also finds (one-sided p < 0.05): a smaller
  test set cannot fail a model on noise.
- **latency**, both files re-timed here in interleaved rounds (the machine's noise hits both alike): a
  regression is a median slowdown past `--max-slowdown` percent with the new file slower in at least three
  rounds of four. Emulated Arm instruction counts (`benchmark --emulate`), recorded for that very file's
  sha256, are exact: any growth past the budget is a regression, no test needed.
- **size** of the files themselves, exact: growth past `--max-growth` percent.

A check that cannot be made is a row saying why, and fails the gate unless `--allow-missing` names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.backends import load_interpreter
from edge_runtime.bench import fill_inputs, time_invokes
from edge_runtime.errors import EdgeRuntimeError

from ..choices import GateCheck
from ..measure.evaluate import DEFAULT_MAX_DROP
from ..output.tables import Shown, Table
from ..progress import Reporter
from .folders import FolderResults

SIGNIFICANCE = 0.05  # one-sided, for McNemar's test
SLOWER_SHARE = 0.75  # of the interleaved rounds in which the new file must be slower
Timings = tuple[list[float], list[float]] | str  # per-round p50 of both files, or why the re-timing failed


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
    # The shorter tail only, in logarithms: a split of 10 against 19,000 took 75 s as a sum of exact big integers.
    if only_old > n / 2:
        return min(1.0, _binomial_half(n, only_old, n))
    return max(0.0, 1.0 - _binomial_half(n, 0, only_old - 1))


def _binomial_half(n: int, low: int, high: int) -> float:
    """P(low <= X <= high) for X ~ Binomial(n, 1/2), summed in logarithms."""
    if high < low:
        return 0.0
    logs = [
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2) for k in range(low, high + 1)
    ]
    top = max(logs)
    return math.exp(top) * math.fsum(math.exp(value - top) for value in logs)


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
    missing: bool = False  # the check could not be made (`why` says why)
    allowed: bool = False  # ... and --allow-missing accepts that
    applies: bool = True  # False: nothing to check (no emulated counts in either folder)

    @property
    def failed(self) -> bool:
        return self.regression or (self.missing and not self.allowed)

    @property
    def verdict(self) -> str:
        if self.missing:
            return "missing, allowed" if self.allowed else "CANNOT CHECK"
        if not self.applies:
            return "n/a"
        return "REGRESSION" if self.regression else "ok"

    def failure(self) -> str:
        """One clause for the gate's error line."""
        if self.regression:
            return f"{self.metric} {self.change} (budget {self.budget})"
        return f"{self.metric} cannot be checked ({self.why.removeprefix('cannot be checked: ')})"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "verdict": self.verdict, "failed": self.failed}


def missing(metric: str, budget: str, why: str, allowed: bool) -> Check:
    """A check that cannot be made: a failing row unless --allow-missing names it."""
    return Check(metric, "-", "-", "not checked", budget, False, f"cannot be checked: {why}", True, allowed)


@dataclass(repr=False)
class GateResult(Shown):
    """Every check of NEW against the baseline; `regressions` lists the failed ones."""

    new: str
    baseline: str
    variants: tuple[str, str]  # (baseline's, new's) shipped variant
    checks: list[Check] = field(default_factory=list)

    @property
    def regressions(self) -> list[Check]:
        """The failed checks: regressions, and checks that could not be made without --allow-missing."""
        return [c for c in self.checks if c.failed]

    def summary(self) -> str:
        if not self.regressions:
            allowed = sum(c.missing for c in self.checks)
            also = f", {allowed} missing as --allow-missing allows" if allowed else ""
            return f"{self.new} against {self.baseline}: no regression ({len(self.checks)} checks{also})"
        found = "; ".join(c.failure() for c in self.regressions)
        verb = "regresses against" if any(c.regression for c in self.regressions) else "fails the gate against"
        return f"{self.new} {verb} {self.baseline}: {found}"

    def table(self) -> Table:
        rows = [[c.metric, c.baseline, c.new, c.change, c.budget, c.verdict, c.why] for c in self.checks]
        title = f"{self.new} ({self.variants[1]}) against the baseline {self.baseline} ({self.variants[0]})"
        return Table(title, ["check", "baseline", "new", "change", "budget", "verdict", "why"], rows, [self.summary()])

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "baseline": self.baseline,
            "variants": {"baseline": self.variants[0], "new": self.variants[1]},
            "passed": not self.regressions,
            "summary": self.summary(),
            "checks": [c.to_dict() for c in self.checks],
            "regressions": [c.metric for c in self.regressions],
        }


def allows(allowed: frozenset[GateCheck], check: GateCheck, cpu: str | None = None) -> bool:
    """True when --allow-missing accepts this check (an emulated CPU's: `emulated` or that CPU's name)."""
    return check in allowed or (cpu is not None and cpu in allowed)


def _unmeasured(folder: FolderResults, variant: str) -> str | None:
    """Why a folder's variant has no measured predictions, or None when it has."""
    if folder.unmeasured is not None:
        return f"{folder.name}: {folder.unmeasured}"
    if variant in folder.failures:
        return f"{folder.name}: {folder.failures[variant]}"
    return None


def _accuracy(old: FolderResults, new: FolderResults, variants: tuple[str, str], budget: float, allowed: bool) -> Check:
    why = _unmeasured(old, variants[0]) or _unmeasured(new, variants[1])
    if why is None and old.images is not None and new.images is not None and not old.images.same_as(new.images):
        why = (f"the two folders' test images differ ({old.name}: {old.images.source}, {old.images.fingerprint[:12]}; "
               f"{new.name}: {new.images.source}, {new.images.fingerprint[:12]})")  # fmt: skip
    if why is not None:
        return missing("accuracy", f"{budget:g} pp", why, allowed)
    labels, before, after = old.predictions["labels"], old.predictions[variants[0]], new.predictions[variants[1]]
    old_right, new_right = before == labels, after == labels
    only_old, only_new = int((old_right & ~new_right).sum()), int((new_right & ~old_right).sum())
    p = mcnemar_p(only_old, only_new)
    change = (new_right.mean() - old_right.mean()) * 100
    drop = -change
    regression = bool(drop > budget and p < SIGNIFICANCE)
    why = (f"both files run here on {len(labels):,} test images, same top-1 on {(before == after).mean():.2%}; "
           f"{only_old} images only the baseline gets right, {only_new} only the new one (McNemar p={p:.3g}"
           + (")" if regression or drop <= budget else ", within noise)"))  # fmt: skip
    return Check("accuracy", f"{old_right.mean():.2%}", f"{new_right.mean():.2%}", f"{change:+.2f} pp",
                 f"{budget:g} pp", regression, why)  # fmt: skip


def retime(contents: tuple[bytes, bytes], budgets: Budgets, reporter: Reporter) -> tuple[list[float], list[float]]:
    """Per-round p50 (ms) of the two files (their checked bytes), interleaved (the order alternating each round)."""
    interpreters = []
    for content in contents:
        interpreter, _ = load_interpreter(Path("model.tflite"), budgets.threads, content=content)
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


def timed(contents: tuple[bytes, bytes], budgets: Budgets, reporter: Reporter) -> Timings:
    """The interleaved re-timing, or why it could not run."""
    try:
        return retime(contents, budgets, reporter)
    except EdgeRuntimeError as error:
        return str(error)


def _latency(timings: Timings, budgets: Budgets, allowed: bool) -> Check:
    metric = f"latency @{budgets.threads}t (here)"
    if isinstance(timings, str):
        return missing(metric, f"{budgets.max_slowdown:g}%", f"the re-timing failed: {timings}", allowed)
    old_ms, new_ms = timings
    ratios = np.asarray(new_ms) / np.asarray(old_ms)
    median, low, high = (float(np.quantile(ratios, q)) for q in (0.5, 1 - SLOWER_SHARE, SLOWER_SHARE))
    regression = bool((median - 1) * 100 > budgets.max_slowdown and low > 1.0)
    why = f"new/baseline per round: median {median:.3f}, middle half {low:.3f}..{high:.3f} ({len(ratios)} rounds)"
    return Check(metric, f"{np.median(old_ms):.3f} ms", f"{np.median(new_ms):.3f} ms",
                 f"{(median - 1) * 100:+.1f}%", f"{budgets.max_slowdown:g}%", regression, why)  # fmt: skip


def _exact(metric: str, old: float, new: float, budget: float, unit: str, scale: float = 1.0) -> Check:
    growth = (new / old - 1) * 100 if old else 0.0
    return Check(metric, f"{old / scale:,.2f}{unit}", f"{new / scale:,.2f}{unit}", f"{growth:+.1f}%", f"{budget:g}%",
                 bool(growth > budget), "exact (no noise)")  # fmt: skip


def _emulated(old: FolderResults, new: FolderResults, variants: tuple[str, str], budget: float,
              allowed: frozenset[GateCheck]) -> list[Check]:  # fmt: skip
    """A check per emulated CPU and interpreter either folder has a count for, of its shipped file's sha256."""
    before, after = old.row(variants[0]), new.row(variants[1])
    assert before is not None and after is not None
    devices = sorted(before.emulated.keys() | after.emulated.keys())
    if not devices:
        why = "not part of this gate: neither folder has counts of its shipped file (benchmark --emulate)"
        return [Check("emulated instructions", "-", "-", "-", f"{budget:g}%", False, why, applies=False)]
    checks = []
    for device in devices:
        metric = f"{device} (emulated)"
        if device in before.emulated and device in after.emulated:
            checks.append(_exact(metric, before.emulated[device], after.emulated[device], budget, " M instr", 1e6))
            continue
        lacking, row = (new, after) if device in before.emulated else (old, before)
        cpu = device.split("/")[0]
        why = (f"{lacking.name} has no count of its {row.variant} file (sha256 {row.sha256[:12]}) on {device}: "
               f"run `edge-pipeline benchmark {lacking.path} --emulate {cpu}`")  # fmt: skip
        checks.append(missing(metric, f"{budget:g}%", why, allows(allowed, GateCheck.EMULATED, cpu)))
    return checks


def gate(old: FolderResults, new: FolderResults, variants: tuple[str, str], budgets: Budgets, timings: Timings,
         allowed: frozenset[GateCheck] = frozenset()) -> GateResult:  # fmt: skip
    """Every check of `new`'s shipped variant against `old`'s."""
    result = GateResult(new.name, old.name, variants)
    before, after = old.row(variants[0]), new.row(variants[1])
    assert before is not None and after is not None
    result.checks.append(_accuracy(old, new, variants, budgets.max_drop, allows(allowed, GateCheck.ACCURACY)))
    result.checks.append(_latency(timings, budgets, allows(allowed, GateCheck.LATENCY)))
    result.checks.extend(_emulated(old, new, variants, budgets.max_slowdown, allowed))
    result.checks.append(_exact("size", before.size_kb, after.size_kb, budgets.max_growth, " KB"))
    result.checks[-1].why = "exact: the files' own bytes (no noise)"
    return result
