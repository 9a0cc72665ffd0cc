"""What a training run is configured with: hyper-parameters and the whole `train` configuration.

The options of `edge-pipeline train` and `pipeline.train` read their defaults from these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..choices import Resize
from ..data.dataset import DEFAULT_SEED, Augmentation, DataConfig
from .distribute import DistributeConfig
from .models import ModelOptions

MODELS_ROOT = Path("models")


@dataclass(frozen=True)
class HyperParams:
    """Training hyper-parameters. `learning_rate=None` takes the model's default."""

    epochs: int = 12
    batch_size: int | None = None  # None: DEFAULT_BATCH_SIZE, halved until an epoch has MIN_STEPS_PER_EPOCH steps
    learning_rate: float | None = None
    patience: int = 4  # epochs without a better validation loss before stopping
    fine_tune_epochs: int = 5
    fine_tune_lr_factor: float = 0.1
    seed: int = DEFAULT_SEED
    # Bounds the logits so int8 resolves them finely: int8 agreement with Keras rose from
    # 99.48% to 99.74% (cnn) and 98.26% to 98.91% (mobilenet_v2 0.35, 32 px); accuracy the same.
    label_smoothing: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """Everything `train` needs: data, model, hyper-parameters and where to write."""

    data: DataConfig = field(default_factory=DataConfig)
    model: str = "cnn"
    options: ModelOptions = field(default_factory=ModelOptions)
    hparams: HyperParams = field(default_factory=HyperParams)
    augmentation: Augmentation | None = None  # None: no augmentation
    invert: bool = False
    resize: Resize = Resize.STRETCH  # how images of another aspect ratio become the input size (InputSpec.resize)
    output: Path | None = None  # default models/<name>
    name: str | None = None  # default: the output folder's name, else <dataset>-<model>
    tensorboard: Path | None = None
    overwrite: bool = False
    # Continue an interrupted training from its checkpoint (pipeline.training.checkpoint); None: when there is one,
    # without a word when there is none (what `run` does).
    resume: bool | None = False
    distribute: DistributeConfig = field(default_factory=DistributeConfig)

    @property
    def model_name(self) -> str:
        if self.name:
            return self.name
        if self.output is not None:
            return self.output.resolve().name
        # A --limit quick run gets its own folder, so it never replaces the full model.
        quick = f"-limit{self.data.limit}" if self.data.limit is not None else ""
        return f"{self.data.name}-{self.model}{quick}".replace("_", "-")

    @property
    def folder(self) -> Path:
        return self.output or MODELS_ROOT / self.model_name
