"""What share of its predictions one class takes in models that learned and in models that did not.

Issue 31: `run --data photos --model cnn --input-size 64` on 3 classes reached 54.84%, answering the largest
class for 29 of 31 test images, and was recommended. `pipeline.measure.learning` calls such a model collapsed
when one class takes at least COLLAPSE_SHARE of its predictions while its accuracy is not significantly above
the majority-class rate. This measures that share on real short trainings of the cnn (input 64 px, as in the
issue) on Fashion-MNIST image folders: imbalanced like a person's photos (50% / 30% / 20% of the images) and
balanced, from a training too short to learn (one step of a tiny learning rate) to several epochs.

    python benchmarks/learning_verdict.py [--work DIR] [--from-json]

Writes benchmarks/results/learning_verdict.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# Fashion-MNIST classes (index: folder name) and the images of each, largest first.
FOLDERS = {
    "imbalanced 310 (hard classes)": ({0: "top", 6: "shirt", 2: "pullover"}, (155, 93, 62)),
    "imbalanced 310 (easy classes)": ({1: "trouser", 7: "sneaker", 8: "bag"}, (155, 93, 62)),
    "balanced 600 (hard classes)": ({0: "top", 6: "shirt", 2: "pullover"}, (200, 200, 200)),
}
# (what, epochs, learning rate, batch size): from nothing learned to a trained model.
TRAININGS = (
    ("untrained (1 step, lr 1e-9)", 1, 1e-9, 512),
    ("1 epoch, lr 1e-4", 1, 1e-4, None),
    ("1 epoch", 1, None, None),
    ("3 epochs", 3, None, None),
    ("10 epochs", 10, None, None),
)
SEEDS = (0, 1)


def image_folder(root: Path, classes: dict[int, str], counts: tuple[int, ...]) -> Path:
    from pipeline.data.named import NAMED_DATASETS

    (x, y, _, _), _ = NAMED_DATASETS["fashion-mnist"].load(None, False)
    shutil.rmtree(root, ignore_errors=True)
    for (label, name), count in zip(classes.items(), counts, strict=True):
        (root / name).mkdir(parents=True)
        for index, member in enumerate(np.flatnonzero(y == label)[:count]):
            Image.fromarray(x[member].reshape(28, 28)).save(root / name / f"{index:04d}.png")
    return root


def measure(folder: Path, out: Path, epochs: int, rate: float | None, batch: int | None, seed: int) -> dict:
    from pipeline.data.dataset import DataConfig
    from pipeline.training.models import ModelOptions
    from pipeline.training.stage import HyperParams, TrainConfig, train

    result = train(
        TrainConfig(
            data=DataConfig(data_path=folder, seed=seed),
            options=ModelOptions(input_size=64),
            hparams=HyperParams(epochs=epochs, learning_rate=rate, batch_size=batch, seed=seed),
            output=out,
            overwrite=True,
        )
    )
    verdict = result.learning
    return {
        "test_images": verdict.images,
        "accuracy": verdict.accuracy,
        "majority_rate": verdict.majority_rate,
        "top_share": verdict.top_share,
        "p_value": verdict.p_value,
        "near_chance": verdict.near_chance,
        "collapsed": verdict.collapsed,
        "learned": verdict.learned,
    }


def markdown(rows: list[dict]) -> str:
    from pipeline.measure.learning import CHANCE_BAND, COLLAPSE_SHARE

    lines = [
        "# One class's share of the predictions, in models that learned and in models that did not",
        "",
        "The cnn at 64 px (as in issue 31) on Fashion-MNIST image folders; test split 10% of each folder. "
        "Verdict: `pipeline.measure.learning`; before it, a model was refused only below "
        f"1/classes + {CHANCE_BAND:g} x (1 - 1/classes) (46.67% on 3 classes), whatever it answered.",
        "",
        "| folder | training | seed | test images | accuracy | majority rate | top class share | McNemar p "
        "| verdict | refused before |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        verdict = "collapsed" if r["collapsed"] else ("near chance" if r["near_chance"] else "learned")
        p = "-" if r["p_value"] is None else f"{r['p_value']:.2g}"
        before = "yes" if r["accuracy"] < 1 / 3 + (1 - 1 / 3) * CHANCE_BAND else ("no" if r["learned"] else "**no**")
        lines.append(
            f"| {r['folder']} | {r['training']} | {r['seed']} | {r['test_images']} | {r['accuracy']:.2%} | "
            f"{r['majority_rate']:.2%} | {r['top_share']:.0%} | {p} | {verdict} | {before} |"
        )
    learned = [r["top_share"] for r in rows if r["learned"]]
    refused = [r["top_share"] for r in rows if not r["learned"]]
    missed = [r for r in rows if not r["learned"] and r["accuracy"] >= 1 / 3 + (1 - 1 / 3) * CHANCE_BAND]
    lines += [
        "",
        f"- learned ({len(learned)} runs): the most answered class takes {min(learned):.0%} to {max(learned):.0%} of "
        "the answers, about as often as the largest class occurs (or at most 20 points more)",
        f"- did not learn ({len(refused)} runs): {min(refused):.0%} to {max(refused):.0%}; "
        f"{sum(s >= COLLAPSE_SHARE for s in refused)} of them at least {COLLAPSE_SHARE:.0%}, and those below are "
        "near chance anyway",
        f"- so COLLAPSE_SHARE is {COLLAPSE_SHARE:.0%}: above every model that learned, below most that did not",
        f"- {len(missed)} run(s) the old rule let through: "
        + "; ".join(
            f"{r['folder']}, {r['training']}, seed {r['seed']}: {r['accuracy']:.2%}, one class "
            f"{r['top_share']:.0%} of the answers"
            for r in missed
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "learning")
    parser.add_argument("--from-json", action="store_true", help="only write the markdown again from the JSON")
    args = parser.parse_args()
    rows = json.loads((RESULTS / "learning_verdict.json").read_text()) if args.from_json else []
    for name, (classes, counts) in {} if args.from_json else FOLDERS.items():
        folder = image_folder(args.work / name.split()[0] / name.split("(")[1].split()[0], classes, counts)
        for what, epochs, rate, batch in TRAININGS:
            for seed in SEEDS:
                row = {"folder": name, "training": what, "seed": seed}
                row |= measure(folder, args.work / "model", epochs, rate, batch, seed)
                rows.append(row)
                print(json.dumps(row), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "learning_verdict.json").write_text(json.dumps(rows, indent=2) + "\n")
    text = markdown(rows)
    (RESULTS / "learning_verdict.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
