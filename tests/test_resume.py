"""Day two: a real `run` interrupted with SIGINT continues where it stopped; a checkpoint is untrusted input.

The acceptance test interrupts a real `run` after 2 of 4 epochs, re-runs it (it trains the remaining
epochs only), interrupts that in `benchmark`, and re-runs again (only benchmark and report are redone);
the finished model's history and accuracy equal an uninterrupted training's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipeline.training import checkpoint
from pipeline.training.checkpoint import CheckpointUnusable, EpochState
from tests.bad_files import zip_with_many_members
from tests.conftest import ROOT, requires_fashion_mnist
from tests.test_memory_bounds import MAX_RSS_MB, measured

TRAINING = ["--limit", "2000", "--epochs", "4", "--seed", "11"]
# A benchmark long enough (~4 s) to be interrupted in, on two variants only.
RUN = [*TRAINING, "--precision", "float32", "--precision", "dynamic", "--threads", "1", "--runs", "20000"]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _interrupt_when(process: subprocess.Popen[str], ready: Callable[[str], bool]) -> str:
    """Send SIGINT once `ready(output so far)` holds; return the whole output."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    sent = False
    while process.poll() is None:
        if not sent and ready("".join(lines)):
            process.send_signal(signal.SIGINT)
            sent = True
        time.sleep(0.05)
    reader.join(timeout=30)
    output = "".join(lines)
    assert sent, output[-2000:]
    return output


def _epochs_done(folder: Path) -> int:
    try:
        return int(checkpoint.read_state(folder / "checkpoint.npz")["epochs_done"])
    except (CheckpointUnusable, OSError):
        return 0


@pytest.mark.slow
@requires_fashion_mnist
def test_run_interrupted_in_training_then_in_benchmark_finishes_what_is_left(tmp_path: Path) -> None:
    reference = tmp_path / "uninterrupted"
    alone = subprocess.run(
        [sys.executable, "-m", "pipeline", "train", *TRAINING, "--output", str(reference)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-2000:]
    folder = tmp_path / "run"

    first = _start("run", *RUN, "--output", str(folder))
    output = _interrupt_when(first, lambda _: _epochs_done(folder) >= 2)
    assert first.returncode == 130, output[-2000:]
    assert "re-run the same command to continue" in output
    done = _epochs_done(folder)
    assert done in (2, 3) and not (folder / "metadata.json").exists()

    second = _start("run", *RUN, "--output", str(folder))
    output = _interrupt_when(second, lambda text: "benchmarking" in text or "── benchmark ──" in text)
    assert second.returncode == 130, output[-2000:]
    assert f"resuming after epoch {done} (of at most 4" in output
    trained = [line for line in output.splitlines() if line.strip().startswith("epoch ") and ": loss" in line]
    assert [line.split(":")[0].strip() for line in trained] == [f"epoch {n}" for n in range(done + 1, 5)]
    assert "interrupted during benchmark" in output

    third = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", *RUN, "--output", str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-2000:]
    for stage in ("train", "convert", "evaluate"):
        assert f"{stage}: up to date" in third.stdout
    for stage in ("benchmark", "report"):
        assert f"{stage}: up to date" not in third.stdout
    assert "epoch 1:" not in third.stdout

    history = json.loads((folder / "history.json").read_text())
    expected = json.loads((reference / "history.json").read_text())
    assert history.keys() == expected.keys()
    for key in history:
        np.testing.assert_allclose(history[key], expected[key], rtol=0, atol=1e-6)
    ours, theirs = (json.loads((f / "metadata.json").read_text())["training"] for f in (folder, reference))
    assert abs(ours["test_accuracy"] - theirs["test_accuracy"]) < 1e-6
    assert ours["resumed_after"] == done and ours["epochs_run"] == 4
    assert not (folder / "checkpoint.npz").exists()  # the finished training's commit removed it
    stages = json.loads((folder / "metadata.json").read_text())["stages"]
    assert set(stages) == {"train", "convert", "evaluate", "benchmark", "report"}


# --- a checkpoint is untrusted input ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model():
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dropout(0.2), keras.layers.Dense(2)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    return model


def _saved(path: Path, model) -> EpochState:
    state = EpochState("abc", 4, epochs_done=1, history={"loss": [1.0], "val_loss": [1.0]})
    state.best_weights = [np.array(w) for w in model.get_weights()]
    checkpoint.save(path, state, model, model.optimizer)
    return state


def test_a_checkpoint_round_trips_every_variable(tmp_path: Path, small_model) -> None:
    path = tmp_path / "checkpoint.npz"
    _saved(path, small_model)
    variables = [*small_model.variables, *small_model.optimizer.variables]
    before = [v.numpy().copy() for v in variables]
    for variable in variables:
        variable.assign(np.zeros(variable.shape, variable.dtype))
    state = checkpoint.load(path, "abc")
    checkpoint.restore(path, state, small_model, small_model.optimizer)
    after = [v.numpy() for v in variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert state.epochs_done == 1 and len(state.best_weights) == len(small_model.get_weights())


def _rewritten(path: Path, replace: dict[str, bytes]) -> None:
    """The same archive with some members' bytes replaced."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members.update(replace)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _flipped(path: Path, name: str) -> None:
    """One byte of a member's data changed where it is stored: its CRC no longer matches."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename.encode()) + info.file_size - 1] ^= 0xFF
    path.write_bytes(bytes(data))


def _bzip2(path: Path) -> None:
    members = _members(path)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data, zipfile.ZIP_BZIP2 if name == "model/00000.npy" else zipfile.ZIP_STORED)


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda p: p.write_bytes(b"not a zip"), "not a readable checkpoint"),
        (lambda p: p.write_bytes(p.read_bytes()[:-200]), "not a readable checkpoint"),
        (lambda p: _rewritten(p, {"model/00000.npy": _npy(np.zeros((1000, 1000), np.float32))}), "larger than"),
        (lambda p: _rewritten(p, {"model/00000.npy": _npy(np.zeros((3, 4), np.float32))}), "the model's is"),
        (lambda p: _rewritten(p, {"model/00000.npy": _npy(np.array([{"x": 1}] * 12, dtype=object))}), "the model's is"),
        (lambda p: _rewritten(p, {"best/00000.npy": _npy(np.zeros((4, 3), np.float64))}), "the model's is"),
        (lambda p: _rewritten(p, {"optimizer/00003.npy": _npy(np.zeros((2,), np.float32))}), "the model's is"),
        (lambda p: _flipped(p, "optimizer/00002.npy"), "not a readable checkpoint \\(BadZipFile\\)"),
        (lambda p: _rewritten(p, {"notes.npy": b"hello"}), "it holds 21 files, its record names 20"),
        (_bzip2, "compressed with method 12, not stored or deflate"),
        (lambda p: zip_with_many_members(p, _members(p), 100_000), "its zip declares 100,020 files"),
    ],
    ids=["garbage", "cut-short", "huge-array", "wrong-shape", "pickled-objects", "wrong-dtype", "wrong-optimizer-shape",
         "bad-checksum", "extra-member", "bzip2", "100,000-members"],
)  # fmt: skip
def test_a_damaged_or_hostile_checkpoint_is_refused_in_one_line(tmp_path: Path, small_model, damage, why) -> None:
    """Refused when resuming is decided (verify, before "resuming after epoch N") and when it is done (restore)."""
    path = tmp_path / "checkpoint.npz"
    _saved(path, small_model)
    damage(path)
    for attempt in (
        lambda: checkpoint.verify(path, small_model),
        lambda: checkpoint.restore(path, checkpoint.load(path, "abc"), small_model, small_model.optimizer),
    ):
        with pytest.raises(CheckpointUnusable, match=why) as caught:
            attempt()
        assert "\n" not in str(caught.value)


def test_a_checkpoint_with_a_million_members_is_refused_before_it_is_listed(tmp_path: Path, small_model) -> None:
    """Its zip's end record is read first: 535 MB to list a million empty members (1.2 GB in a training), now 42."""
    path = tmp_path / "checkpoint.npz"
    _saved(path, small_model)
    zip_with_many_members(path, _members(path), 1_000_000)
    code = "from pipeline.training import checkpoint; import sys; checkpoint.load(sys.argv[1], 'abc')"
    done = measured([sys.executable, "-c", code, str(path)])
    last = done.err[-1]
    assert done.code == 1 and "CheckpointUnusable: its zip declares 1,000,020 files" in last, done.err
    assert done.peak_mb < 100, done.peak_mb


def test_a_checkpoint_of_other_settings_or_of_another_model_is_not_resumed(tmp_path: Path, small_model) -> None:
    import keras

    path = tmp_path / "checkpoint.npz"
    _saved(path, small_model)
    with pytest.raises(CheckpointUnusable, match="another training"):
        checkpoint.load(path, "other settings")
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5), keras.layers.Dense(2)])
    other.compile(optimizer="adam", loss="mse")
    other.optimizer.build(other.trainable_variables)
    with pytest.raises(CheckpointUnusable, match="not this model's"):
        checkpoint.restore(path, checkpoint.load(path, "abc"), other, other.optimizer)
    record = checkpoint.read_state(path)
    _rewritten(path, {"state.npy": _npy(np.frombuffer(json.dumps({**record, "epochs_done": 99}).encode(), np.uint8))})
    with pytest.raises(CheckpointUnusable, match="do not agree"):
        checkpoint.load(path, "abc")


# --- a real training resumes, or starts over in one line ---------------------------------------------

TINY = ["--model", "mlp", "--limit", "1000", "--epochs", "2", "--seed", "5"]


# A real training of TINY stopped where an interruption would, after its first epoch's checkpoint; in a fresh
# process, as the command line trains: Keras numbers layers per process, and the names are in the fingerprint.
INTERRUPTED = """
import sys
import keras
from pipeline.surface import stage_configs
from pipeline.surface.keywords import bind
from pipeline.training.stage import train

class Stopped(Exception):
    pass

class StopInSecondEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise Stopped

options = dict(zip(sys.argv[2::2], sys.argv[3::2], strict=True))
given = {key.removeprefix("--"): value if key == "--model" else int(value) for key, value in options.items()}
try:
    config = stage_configs.train_config("train", bind("train", {**given, "output": sys.argv[1]}))
    train(config, callbacks=[StopInSecondEpoch()])
except Stopped:
    sys.exit(0)
sys.exit("the training was not stopped")
"""


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the checkpoint a real MLP training (TINY) wrote after its first epoch of two."""
    folder = tmp_path_factory.mktemp("interrupted") / "mlp"
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED, str(folder), *TINY], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert checkpoint.read_state(folder / "checkpoint.npz")["epochs_done"] == 1
    return folder


RESUMES: list[tuple[str, Callable[[Path], None], str | None]] = [
    ("intact", lambda path: None, None),
    ("one array of the wrong shape", lambda path: _rewritten(path, {"model/00000.npy": _npy(np.zeros((3, 4), "f4"))}),
     "its model/00000 is float32[3, 4], the model's is float32["),
    ("a million more members", lambda path: zip_with_many_members(path, _members(path), 1_000_000),
     "its zip declares 1,000,"),
]  # fmt: skip


@requires_fashion_mnist
@pytest.mark.parametrize(("case", "damage", "why"), RESUMES, ids=[c[0] for c in RESUMES])
def test_train_resume_continues_an_intact_checkpoint_and_starts_a_damaged_one_over(
    interrupted: Path, tmp_path: Path, case: str, damage: Callable[[Path], None], why: str | None
) -> None:
    """docs/day-two.md: a damaged checkpoint starts over from epoch 1 with one line saying why; it used to say
    "resuming after epoch 1" and exit 1 (a wrong shape), or take 1.2 GB to list (a million members)."""
    folder = tmp_path / "mlp"
    shutil.copytree(interrupted, folder)
    damage(folder / "checkpoint.npz")
    done = measured([sys.executable, "-m", "pipeline", "train", *TINY, "--resume", "--output", str(folder)])
    output = done.out + done.err
    text = "\n".join(output)
    assert done.code == 0 and "Traceback" not in text and done.peak_mb < MAX_RSS_MB, (done.peak_mb, text[-3000:])
    refused = [line for line in output if "not resumed" in line]
    if why is None:
        assert not refused and "resuming after epoch 1 (of at most 2" in text, text[-3000:]
    else:
        assert len(refused) == 1 and why in refused[0] and "training from the first epoch" in refused[0], text[-3000:]
        assert "resuming" not in text
    assert json.loads((folder / "metadata.json").read_text())["training"]["resumed_after"] == (0 if why else 1)
    print(f"{case}: peak {done.peak_mb:.0f} MB")
