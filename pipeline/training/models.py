"""Model registry: each model by name, the input it takes, and how to build it.

Every model takes raw pixels (0..255) at its input resolution and normalises inside the
graph, so a device only resizes an image and feeds it. Keras is imported only when a model
is built, so checking options stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_runtime.folder.reader import InputSpec

from ..data.dataset import NativeFormat
from ..errors import DataError, UsageError, cause

MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)
WEIGHT_CHOICES = ("imagenet", "none")
# keras.applications.vgg16.preprocess_input: RGB -> BGR, minus the ImageNet mean (BGR order).
VGG_MEAN_BGR = (103.939, 116.779, 123.68)
# cnn block widths. 128 in the last block: 92.86% on Fashion-MNIST in 12 epochs, against
# 92.46% in 15 epochs with 64 (each epoch ~10% dearer, so the run is shorter overall).
CNN_FILTERS = (32, 64, 128)


@dataclass(frozen=True)
class ModelOptions:
    """Architecture options; only some models use each one."""

    alpha: float = 1.0
    input_size: int | None = None
    weights: str = "imagenet"  # imagenet | none | path to a .h5/.weights.h5 file
    dropout: float = 0.2
    fine_tune: int = 0  # unfreeze the top N layers of a pretrained base in a second phase

    def to_record(self, spec: ModelSpec) -> dict[str, Any]:
        """The options that mean something for this model."""
        record = asdict(self)
        if not spec.uses_alpha:
            record.pop("alpha")
        if not spec.uses_weights:
            for key in ("weights", "dropout", "fine_tune"):
                record.pop(key)
        return record

    @property
    def pretrained(self) -> bool:
        return self.weights != "none"


@dataclass(frozen=True)
class ModelSpec:
    """A model in the registry."""

    name: str
    summary: str
    build: Callable[[InputSpec, int, ModelOptions], Any]
    rgb_only: bool = False  # ImageNet backbones take 3 channels
    min_size: int = 8
    default_size: int | None = None  # None: the dataset's own size
    uses_weights: bool = False  # has an ImageNet-style backbone (--weights, --fine-tune)
    uses_alpha: bool = False
    learning_rate: float = 1e-3
    scratch_learning_rate: float | None = None  # when a backbone starts from random weights

    def default_learning_rate(self, options: ModelOptions) -> float:
        if self.uses_weights and not options.pretrained and self.scratch_learning_rate is not None:
            return self.scratch_learning_rate
        return self.learning_rate

    def input_spec(
        self, options: ModelOptions, native: NativeFormat, invert: bool = False, resize: str = "stretch"
    ) -> InputSpec:
        """The model's input for this dataset: size from options or defaults, colour from the model."""
        if options.input_size is not None:
            height = width = options.input_size
        elif self.default_size is not None:
            height = width = max(self.default_size, self.min_size)
        elif native.height == native.width or (native.height <= 64 and native.width <= 64):
            height, width = max(native.height, self.min_size), max(native.width, self.min_size)
        else:
            height = width = 64  # photos from a folder: a size a small CNN can afford
        channels = 3 if self.rgb_only else native.channels
        color = "rgb" if channels == 3 else "grayscale"
        return InputSpec(height, width, channels, color, invert, "uint8", resize=str(resize))


def check_options(spec: ModelSpec, options: ModelOptions) -> None:
    """Reject options the model cannot honour, before any data or TensorFlow is loaded."""
    if options.input_size is not None and options.input_size < spec.min_size:
        raise UsageError(
            f"--input-size {options.input_size} is too small for {spec.name}; it needs at least {spec.min_size}"
        )
    if options.input_size is not None and options.input_size > 1024:
        raise UsageError(f"--input-size {options.input_size} is too large; use 1024 or less")
    if spec.uses_alpha and options.alpha not in MOBILENET_ALPHAS:
        raise UsageError(
            f"--alpha {options.alpha:g} is not a MobileNetV2 width; choose one of "
            f"{', '.join(f'{a:g}' for a in MOBILENET_ALPHAS)}"
        )
    if spec.uses_weights:
        if options.weights not in WEIGHT_CHOICES:
            path = Path(options.weights)
            if not path.is_file():
                raise UsageError(
                    f"--weights {options.weights}: not imagenet, none, or an existing .h5/.weights.h5 file"
                )
            if not path.name.endswith(".h5"):
                raise UsageError(
                    f"--weights {options.weights}: expected a Keras weights file ending in .h5 or .weights.h5"
                )
        if options.fine_tune and not options.pretrained:
            raise UsageError(
                "--fine-tune needs pretrained weights; with --weights none the whole network trains from the start"
            )
    elif options.weights not in WEIGHT_CHOICES:
        raise UsageError(
            f"--weights {options.weights}: {spec.name} has no pretrained backbone and always trains from scratch; "
            f"--weights files are for {', '.join(name for name, s in MODELS.items() if s.uses_weights)}"
        )


# --- builders ----------------------------------------------------------------------------------


def _conv_block(x: Any, filters: int) -> Any:
    import keras

    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    # momentum 0.9 (not Keras' 0.99): the moving statistics settle within a short run
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    return keras.layers.ReLU()(x)


def build_cnn(spec: InputSpec, classes: int, options: ModelOptions) -> Any:
    """Three conv/BN/ReLU/pool blocks (32, 64, 128 filters) and a small dense head.

    Small inputs (final map of 4x4 or less, e.g. 28x28) keep the spatial layout (Flatten);
    larger ones average it away, so the model stays small whatever the image size.
    """
    import keras

    inputs = keras.Input((spec.height, spec.width, spec.channels), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0, name="normalise")(inputs)
    for filters in CNN_FILTERS:
        x = _conv_block(x, filters)
        x = keras.layers.MaxPooling2D()(x)
    small = max(spec.height, spec.width) // 2 ** len(CNN_FILTERS) <= 4
    x = keras.layers.Flatten()(x) if small else keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="scores", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_mlp(spec: InputSpec, classes: int, options: ModelOptions) -> Any:
    """The MNIST tutorial's baseline: Flatten, Dense 128 ReLU, Dense softmax."""
    import keras

    inputs = keras.Input((spec.height, spec.width, spec.channels), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0, name="normalise")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="scores", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mlp")


def _load_base_weights(base: Any, options: ModelOptions) -> None:
    if options.weights in WEIGHT_CHOICES:
        return
    try:
        base.load_weights(options.weights)
    except Exception as error:
        raise UsageError(
            f"--weights {options.weights}: cannot load into {base.name} ({cause(error)}); "
            "it must be weights of the same architecture without the top"
        ) from error


def _imagenet_base(
    factory: Callable[..., Any], name: str, spec: InputSpec, options: ModelOptions, **kwargs: Any
) -> Any:
    weights = "imagenet" if options.weights == "imagenet" else None
    try:
        base = factory(input_shape=(spec.height, spec.width, 3), include_top=False, weights=weights, **kwargs)
    except ValueError as error:
        raise UsageError(f"{name}: {str(error).splitlines()[0]}") from None
    except Exception as error:
        if weights != "imagenet":
            raise
        raise DataError(
            f"{name}: ImageNet weights are not in the Keras cache (~/.keras/models) and could not be downloaded "
            f"({cause(error)}); offline, train --model cnn (small, it learns from scratch on a few hundred images), "
            f"pass --weights PATH to a local {name} weights file (.h5 without the top, e.g. from ~/.keras/models of a "
            f"machine that downloaded it), or --weights none ({name} from scratch: on 242 photos it ended near chance)"
        ) from error
    _load_base_weights(base, options)
    return base


def _transfer_head(inputs: Any, x: Any, base: Any, classes: int, options: ModelOptions, name: str) -> Any:
    import keras

    # A pretrained base is frozen and kept in inference mode (BatchNorm statistics stay
    # ImageNet's, also when --fine-tune unfreezes layers); a random one trains fully.
    base.trainable = not options.pretrained
    if not options.pretrained:
        # keras.applications builds BatchNorm with momentum 0.999: from scratch its moving
        # statistics lag thousands of steps behind, and a model that learns scores at chance
        # in inference mode (measured: 10% on Fashion-MNIST after 5 epochs, early-stopped).
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.9
    x = base(x, training=False) if options.pretrained else base(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(options.dropout)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="scores", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_mobilenet_v2(spec: InputSpec, classes: int, options: ModelOptions) -> Any:
    """Keras' MobileNetV2 (alpha, input size) with a pooling/dropout/dense head."""
    import keras

    inputs = keras.Input((spec.height, spec.width, 3), name="pixels")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess_input")(
        inputs
    )  # mobilenet_v2.preprocess_input
    base = _imagenet_base(keras.applications.MobileNetV2, "mobilenet_v2", spec, options, alpha=options.alpha)
    return _transfer_head(inputs, x, base, classes, options, "mobilenet_v2")


def build_vgg16(spec: InputSpec, classes: int, options: ModelOptions) -> Any:
    """The CIFAR-10 tutorial's VGG16 transfer model: VGG16 base, dense head."""
    import keras
    import numpy as np

    inputs = keras.Input((spec.height, spec.width, 3), name="pixels")
    # vgg16.preprocess_input as a fixed 1x1 convolution: swap RGB to BGR and subtract the mean.
    caffe = keras.layers.Conv2D(3, 1, trainable=False, name="preprocess_input")
    x = caffe(inputs)
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    kernel[0, 0, 2, 0] = kernel[0, 0, 1, 1] = kernel[0, 0, 0, 2] = 1.0
    caffe.set_weights([kernel, -np.asarray(VGG_MEAN_BGR, np.float32)])
    base = _imagenet_base(keras.applications.VGG16, "vgg16", spec, options)
    base.trainable = not options.pretrained
    x = base(x, training=False) if options.pretrained else base(x)
    x = (
        keras.layers.Flatten()(x)
        if base.output_shape[1] * base.output_shape[2] <= 4
        else keras.layers.GlobalAveragePooling2D()(x)
    )
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="scores", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="vgg16")


MODELS: dict[str, ModelSpec] = {
    "cnn": ModelSpec(
        "cnn", "small conv/BN/pool network for edge devices (168k parameters at 28x28)", build_cnn, learning_rate=2e-3
    ),
    "mlp": ModelSpec("mlp", "baseline: Flatten, Dense 128 ReLU, Dense softmax", build_mlp),
    "mobilenet_v2": ModelSpec(
        "mobilenet_v2",
        "Keras MobileNetV2 (--alpha, --input-size, --weights, --fine-tune)",
        build_mobilenet_v2,
        rgb_only=True,
        min_size=32,
        default_size=96,
        uses_weights=True,
        uses_alpha=True,
        # From scratch on Fashion-MNIST (6,000 images, 4 epochs): 71% at 3e-3 against 56% at 1e-3.
        scratch_learning_rate=3e-3,
    ),
    "vgg16": ModelSpec(
        "vgg16",
        "baseline: VGG16 base with a dense head",
        build_vgg16,
        rgb_only=True,
        min_size=32,
        uses_weights=True,
        learning_rate=1e-4,
    ),
}


def get_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or a UsageError listing the choices."""
    try:
        return MODELS[name]
    except KeyError:
        own = Path(name).suffix.lower() in (".keras", ".h5", ".tflite") or Path(name).is_dir()
        hint = f"; a model you already have is imported: edge-pipeline import {name} --data DIR" if own else ""
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}{hint}") from None


def build_model(name: str, spec: InputSpec, classes: int, options: ModelOptions) -> Any:
    """Build the named model for this input and number of classes."""
    model_spec = get_spec(name)
    check_options(model_spec, options)
    return model_spec.build(spec, classes, options)


def unfreeze_top(model: Any, layers: int) -> int:
    """Make the top `layers` layers of the model's backbone trainable; returns how many were."""
    import keras

    bases = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if not bases:
        return 0
    base = bases[0]
    base.trainable = True
    count = min(layers, len(base.layers))
    for layer in base.layers[: len(base.layers) - count]:
        layer.trainable = False
    return count
