"""The `mixed` precision: int8 with float regions, the smallest that meets an agreement target.

What was measured before this search was written (MobileNetV2 alpha 0.35, 32 px; 2,000 validation
images to choose, 10,000 test images to report):
- keeping the k most sensitive single ops in float does not help (98.6-98.8% for k = 1..12, and a
  greedy search that reached 99.8% on selection images fell below plain int8 on test): a float op
  between int8 neighbours still reads and writes int8 tensors, so only its weight rounding goes;
- a contiguous float run from the input does help, because early layers carry few weights: ops
  0-22 gave 99.30% at 0.404x float32 size, ops 0-26 99.58% at 0.414x.
So the candidates are runs from the input (every cut point), runs into the output, and the few
single ops the per-layer error ranks worst; each is quantized (cheap), those over the size cap are
dropped, and the rest are tried smallest first on the selection images until one meets the target.
One structural choice per model, scored on validation images only, keeps the test split honest.

"Meets the target" means the Wilson 95% lower bound of the selection agreement does: the best of
many candidates on 2,000 images is an optimistic estimate, and on the default cnn plain int8 (99.75%
on selection, 5 images changed) is not safely above 99.5% while op 0 in float (99.90%) is;
on the test split they gave 99.74% and 99.80% (measured with this search).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_runtime.backends import native_stderr_captured

from ..errors import ConversionError
from ..measure.intervals import Z95_ONE_SIDED, wilson
from . import quantizer
from .quantizer import Op, Ranges

DEFAULT_MIN_AGREEMENT = 99.5  # percent of selection images whose top-1 class matches Keras
DEFAULT_MAX_FLOAT_SHARE = 0.5  # the mixed file may be at most this share of the float32 file
DEFAULT_SELECTION_SAMPLES = 2000  # validation images the search scores candidates on
SINGLE_OP_CANDIDATES = 3  # worst ops by per-layer error tried alone
CONFIDENCE_Z = Z95_ONE_SIDED
FLOAT_WEIGHT_COST = 0.75  # a weight kept in float takes 4 bytes instead of 1: 3/4 of its float32 bytes more
ESTIMATE_SLACK = 1.02  # candidates estimated up to 2% over the cap are quantized to check their real size


def lower_bound(agreed: int, total: int, z: float = CONFIDENCE_Z) -> float:
    """Wilson score lower bound of a proportion, in percent (one-sided 95% by default)."""
    if not total:
        return 0.0
    return 100.0 * wilson(agreed, total, z)[0]


class NoCandidate(ConversionError):
    """No candidate fits under --max-float-share: the variant is skipped, not the whole conversion."""


@dataclass(frozen=True)
class MixedTarget:
    """What the search must meet, and on how many validation images it decides."""

    min_agreement: float = DEFAULT_MIN_AGREEMENT
    max_float_share: float = DEFAULT_MAX_FLOAT_SHARE
    selection_samples: int = DEFAULT_SELECTION_SAMPLES


@dataclass(frozen=True)
class Candidate:
    """A set of ops to keep in float, and how it was proposed."""

    how: str  # "input-run", "output-run", "single-op" or "none"
    ops: tuple[Op, ...]

    @property
    def label(self) -> str:
        if not self.ops:
            return "all int8"
        first, last = self.ops[0], self.ops[-1]
        span = f"op {first.index}" if first is last else f"ops {first.index}-{last.index}"
        return f"{self.how} {span} ({len(self.ops)} in float)"


@dataclass
class MixedChoice:
    """The chosen candidate, its file, and what every candidate scored."""

    content: bytes
    candidate: Candidate
    size_ratio: float
    selection_images: int
    selection_agreement: float
    selection_lower_bound: float
    met: bool
    tried: list[dict[str, Any]] = field(default_factory=list)

    def record(self, target: MixedTarget) -> dict[str, Any]:
        """What metadata.json keeps about the choice (test agreement is added by the caller)."""
        return {
            "float_ops": [f"{op.index}:{op.kind}" for op in self.candidate.ops],
            "chosen_by": self.candidate.how,
            "chosen": self.candidate.label,
            "min_agreement": target.min_agreement,
            "max_float_share": target.max_float_share,
            "selection_images": self.selection_images,
            "selection_agreement": round(self.selection_agreement, 3),
            "selection_lower_bound": round(self.selection_lower_bound, 3),
            "size_ratio": round(self.size_ratio, 4),
            "target_met": self.met,
            "candidates_tried": len(self.tried),
        }


def candidates(ops: list[Op], worst_first: list[int]) -> list[Candidate]:
    """Float runs from the input and into the output at every cut, and the worst single ops."""
    found = [Candidate("none", ())]
    found += [Candidate("input-run", tuple(ops[:cut])) for cut in range(1, len(ops))]
    found += [Candidate("output-run", tuple(ops[cut:])) for cut in range(len(ops) - 1, 0, -1)]
    by_index = {op.index: op for op in ops}
    found += [Candidate("single-op", (by_index[i],)) for i in worst_first[:SINGLE_OP_CANDIDATES] if i in by_index]
    return found


def top1(content: bytes, images: np.ndarray, batch: int = 250) -> np.ndarray:
    """Top-1 class of each image (model input, preprocessed) through LiteRT, batched."""
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_captured():  # the runtime's "Created XNNPACK delegate" INFO line
        interpreter = Interpreter(model_content=content)
        interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    classes = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        interpreter.resize_tensor_input(detail["index"], [len(chunk), *detail["shape"][1:]])
        interpreter.allocate_tensors()
        interpreter.set_tensor(detail["index"], quantizer.input_tensor(detail, chunk))
        interpreter.invoke()
        classes.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).argmax(axis=1))
    return np.concatenate(classes)


def search(
    float_model: bytes,
    ranges: Ranges,
    selection: tuple[np.ndarray, np.ndarray],
    target: MixedTarget,
    worst_first: list[int],
    progress: Callable[[int, int], None] | None = None,
) -> MixedChoice:
    """The smallest candidate within the size cap that meets the target on `selection` (images, Keras top-1).

    Candidates are ordered by estimated size (int8 plus 3 bytes per weight kept in float32) and
    quantized only when their turn comes, so a large model costs a few quantizations, not hundreds.
    When none meets the target, the candidate with the best selection agreement, marked not met.
    """
    images, reference = selection
    int8 = quantizer.quantize(float_model, ranges)
    cap = target.max_float_share * len(float_model)
    if len(int8) > cap:
        raise NoCandidate(
            f"even all-int8 is {len(int8) / len(float_model):.2f}x the float32 size, more than --max-float-share "
            f"{target.max_float_share:g} (a model this small gains little from int8)"
        )
    proposed = candidates(quantizer.float_ops(float_model), worst_first)
    estimates = [len(int8) + FLOAT_WEIGHT_COST * sum(op.weight_bytes for op in c.ops) for c in proposed]
    order = sorted((e, i) for i, e in enumerate(estimates) if e <= cap * ESTIMATE_SLACK)
    tried: list[dict[str, Any]] = []
    best: MixedChoice | None = None
    for done, (_, index) in enumerate(order):
        candidate = proposed[index]
        content = quantizer.quantize(float_model, ranges, candidate.ops) if candidate.ops else int8
        if progress:
            progress(done + 1, len(order))
        if len(content) > cap:
            continue
        agreed = int((top1(content, images) == reference).sum())
        agreement, bound = 100.0 * agreed / len(images), lower_bound(agreed, len(images))
        ratio = len(content) / len(float_model)
        tried.append(
            {"candidate": candidate.label, "size_ratio": round(ratio, 4), "selection_agreement": round(agreement, 3)}
        )
        choice = MixedChoice(content, candidate, ratio, len(images), agreement, bound, False, tried)
        if bound >= target.min_agreement:
            choice.met = True
            return choice
        if best is None or agreement > best.selection_agreement:
            best = choice
    assert best is not None  # all-int8 is always tried: it is under the cap
    return best
