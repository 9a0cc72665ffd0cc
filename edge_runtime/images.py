"""Turn any image a user has (path, PIL image or array; any PIL mode) into model pixels.

Training on image folders uses these same functions, so the pixels a model learns from and
the pixels it sees on the device come from one piece of code.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, UsageError
from .model_folder import InputSpec

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ImageSource = str | Path | Image.Image | np.ndarray

_HIGH_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def is_image_file(path: Path) -> bool:
    """True for visible files whose extension is one of IMAGE_EXTENSIONS."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def open_image(path: Path, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Open, fully decode and EXIF-orient an image file; every failure is one ImageError line.

    ``draft_size`` lets JPEG decode at a reduced scale when the model needs far fewer pixels.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", draft_size)
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # a copy would cost 0.3 ms per photo
            return image
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"{path}: image is too large to decode safely (over {2 * Image.MAX_IMAGE_PIXELS:,} pixels)"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read (empty, corrupt or another format)") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:
        raise ImageError(
            f"{path}: cannot decode image ({str(error) or type(error).__name__}); the file is truncated or corrupt"
        ) from None


def array_to_image(array: np.ndarray) -> Image.Image:
    """Wrap an HxW, HxWx1, HxWx3 or HxWx4 array (uint8, or any numbers in 0..255) as a PIL image."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or 0 in array.shape:
        raise UsageError(f"an image array must be HxW, HxWx1, HxWx3 or HxWx4; got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise UsageError(f"an image array must hold numbers, not {array.dtype}")
        array = np.clip(np.nan_to_num(array.astype(np.float64)), 0, 255).round().astype(np.uint8)
    return Image.fromarray(array)


def _to_eight_bit(image: Image.Image) -> Image.Image:
    """Normalise any PIL mode to L or RGB, scaling 16-bit and float data instead of clipping it."""
    mode = image.mode
    if mode in _HIGH_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        peak = float(values.max()) if values.size else 0.0
        if mode == "F" and peak <= 1.0:
            values = values * 255.0
        elif peak > 255.0:
            values = values / 257.0  # 16-bit range 0..65535 onto 0..255
        return Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8), "L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in _ALPHA_MODES:
        # Transparent pixels show as white in viewers; the model should see what people see.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("L", "RGB"):
        return image
    return image.convert("RGB")  # 1, CMYK, YCbCr, LAB, HSV, ...


def prepare_pixels(image: Image.Image, spec: InputSpec, invert: bool | None = None) -> np.ndarray:
    """Pixels (height, width, channels) uint8 as the model expects them: colour, size, inversion."""
    image = _to_eight_bit(image)
    target_mode = "L" if spec.channels == 1 else "RGB"
    if image.mode != target_mode:
        image = image.convert(target_mode)
    if image.size != (spec.width, spec.height):
        image = image.resize((spec.width, spec.height), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if spec.invert if invert is None else invert:
        pixels = 255 - pixels
    return pixels


def load_pixels(source: ImageSource, spec: InputSpec, invert: bool | None = None) -> np.ndarray:
    """Any image source (path, PIL image, array) to model pixels; bad input raises ImageError."""
    if isinstance(source, (str, Path)):
        image = open_image(Path(source), draft_size=(spec.width, spec.height))
    elif isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = array_to_image(source)
    else:
        raise UsageError(f"cannot read an image from {type(source).__name__}; give a path, a PIL image or an array")
    return prepare_pixels(image, spec, invert)


def collect_images(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Expand folders (recursively, sorted) into image files; return (files, problems).

    Files named explicitly are kept whatever their extension, so that a bad file gets a
    clear error instead of being skipped silently; inside folders only image files count.
    """
    files: list[Path] = []
    problems: list[str] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
            if not found:
                problems.append(f"{path}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return files, problems
