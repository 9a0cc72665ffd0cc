"""Turn any image a user has (path, PIL image or array; any PIL mode) into model pixels.

Training on image folders uses these same functions, so the pixels a model learns from and
the pixels it sees on the device come from one piece of code.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import safe_files
from .decode_cost import ALPHA_MODES as _ALPHA_MODES
from .decode_cost import DECODE_BUDGET, decode_cost
from .decode_cost import HIGH_BIT_MODES as _HIGH_BIT_MODES
from .errors import ImageError, UsageError
from .folder.records import InputSpec

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# The only formats Pillow may open: never EPS or PostScript (Pillow hands those to Ghostscript), nor the
# dozens of rarer decoders a hostile file could aim at.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
ImageSource = str | Path | Image.Image | np.ndarray


def is_image_file(path: Path) -> bool:
    """True for visible files whose extension is one of IMAGE_EXTENSIONS."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def draft_mode(spec: InputSpec) -> str:
    """The mode a JPEG is decoded to for a model: grayscale models get libjpeg's own luma, which is 28% cheaper
    than colour then converted (0.40 against 0.56 ms for a 640x480 frame at 1/8 scale). Training on image folders
    decodes the same way, so both see the same pixels."""
    return "L" if spec.channels == 1 else "RGB"


def _decode(image: Image.Image, where: object, draft_size: tuple[int, int] | None, mode: str) -> Image.Image:
    """Decode an opened image (JPEG at a reduced scale when that still covers draft_size) within the budget."""
    # Before a reduced-scale or grayscale decode: what the file holds (edge_runtime.input_check reads it).
    image.info["original_size"], image.info["original_mode"] = image.size, image.mode
    if draft_size is not None and image.format == "JPEG":
        image.draft(mode, draft_size)
    _within_budget(image, where, mode)  # libjpeg's coefficients, libwebp's canvases, every copy
    image.load()
    _within_budget(image, where, mode)  # a rotation only its EXIF after the pixels tells of
    ImageOps.exif_transpose(image, in_place=True)  # a copy would cost 0.3 ms per photo
    return image


def _within_budget(image: Image.Image, where: object, mode: str) -> None:
    """ImageError when decoding `image` and converting it to the model's `mode` would hold over DECODE_BUDGET."""
    cost = decode_cost(image, "L" if mode == "L" else "RGB")
    if cost.total > DECODE_BUDGET:
        hint = "save it as a baseline JPEG or scale it down" if cost.multi_scan else "scale it down first"
        raise ImageError(
            f"{where}: {cost.describe(image)} needs {cost.total / (1 << 20):,.0f} MB to decode, over the "
            f"{DECODE_BUDGET >> 20} MB limit for one image; {hint}"
        )


def _decode_file(path: Path, where: object, draft_size: tuple[int, int] | None, mode: str) -> Image.Image:
    """A regular file (no FIFO, device or symlink out), within the size limit, decoded."""
    descriptor = safe_files.open_regular(path, "image file", ImageError)
    with os.fdopen(descriptor, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > safe_files.IMAGE_FILE_BYTES:
            limit = safe_files.IMAGE_FILE_BYTES >> 20
            raise ImageError(f"{where}: image file is {size >> 20:,} MB, over the {limit} MB limit")
        return _decode(Image.open(stream, formats=FORMATS), where, draft_size, mode)


def decode_image(
    source: Path | BinaryIO, where: object, draft_size: tuple[int, int] | None = None, mode: str = "RGB"
) -> Image.Image:
    """Open and decode an image from a path or a binary stream, as one of FORMATS only; failures are ImageError lines.

    ``draft_size`` lets JPEG decode at a reduced scale when the model needs far fewer pixels, in ``mode``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if isinstance(source, Path):
                return _decode_file(source, where, draft_size, mode)
            return _decode(Image.open(source, formats=FORMATS), where, draft_size, mode)
    except Image.DecompressionBombError:
        raise ImageError(
            f"{where}: image is too large to decode safely (over {2 * Image.MAX_IMAGE_PIXELS:,} pixels)"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{where}: not an image edge_runtime reads ({', '.join(FORMATS)}); empty, corrupt or another format"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:
        raise ImageError(
            f"{where}: cannot decode image ({str(error) or type(error).__name__}); the file is truncated or corrupt"
        ) from None


def open_image(path: Path, draft_size: tuple[int, int] | None = None, mode: str = "RGB") -> Image.Image:
    """Open, fully decode and EXIF-orient an image file (a regular file only); every failure is one ImageError line."""
    return decode_image(Path(path), Path(path), draft_size, mode)


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


def to_eight_bit(image: Image.Image) -> Image.Image:
    """Normalise any PIL mode to L or RGB, scaling 16-bit and float data instead of clipping it."""
    mode = image.mode
    if mode in _HIGH_BIT_MODES:
        values = np.array(image, dtype=np.float32)  # a float32 copy: the decode budget counts it
        peak = float(values.max()) if values.size else 0.0
        if mode == "F" and peak <= 1.0:
            values *= 255.0
        elif peak > 255.0:
            values /= 257.0  # 16-bit range 0..65535 onto 0..255
        np.round(np.clip(values, 0, 255, out=values), out=values)  # in place: no second float32 copy
        return Image.fromarray(values.astype(np.uint8), "L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in _ALPHA_MODES:
        # Transparent pixels show as white in viewers; the model should see what people see. No copy of an RGBA
        # image, and the white goes as soon as it is composited: 8-12 bytes a pixel beside the image, not 20.
        rgba = image if mode == "RGBA" else image.convert("RGBA")
        composited = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        return composited.convert("RGB")
    if mode in ("L", "RGB"):
        return image
    return image.convert("RGB")  # 1, CMYK, YCbCr, LAB, HSV, ...


def fit(image: Image.Image, spec: InputSpec) -> Image.Image:
    """The image at the model's input size, as ``spec.resize`` says (bilinear in every case).

    stretch: scaled to the size, whatever its aspect ratio. crop: the largest centred region of the model's aspect
    ratio, scaled (MediaPipe: a centred ``region_of_interest``). pad: scaled to fit inside, centred, the rest filled
    by repeating the edge pixels (what MediaPipe's image-to-tensor step reads outside an image: BORDER_REPLICATE).
    """
    size = (spec.width, spec.height)
    if image.size == size:
        return image
    width, height = image.size
    if spec.resize == "crop":
        scale = max(spec.width / width, spec.height / height)
        box_width, box_height = spec.width / scale, spec.height / scale
        left, top = (width - box_width) / 2, (height - box_height) / 2
        return image.resize(size, Image.BILINEAR, box=(left, top, left + box_width, top + box_height))
    if spec.resize == "pad":
        scale = min(spec.width / width, spec.height / height)
        inner = (max(1, min(spec.width, round(width * scale))), max(1, min(spec.height, round(height * scale))))
        scaled = np.asarray(image.resize(inner, Image.BILINEAR))
        left, top = (spec.width - inner[0]) // 2, (spec.height - inner[1]) // 2
        margins = [(top, spec.height - inner[1] - top), (left, spec.width - inner[0] - left)]
        return Image.fromarray(np.pad(scaled, margins + [(0, 0)] * (scaled.ndim - 2), mode="edge"))
    return image.resize(size, Image.BILINEAR)


def prepare_pixels(image: Image.Image, spec: InputSpec, invert: bool | None = None) -> np.ndarray:
    """Pixels (height, width, channels) uint8 as the model expects them: colour, size, inversion."""
    image = to_eight_bit(image)
    target_mode = "L" if spec.channels == 1 else "RGB"
    if image.mode != target_mode:
        image = image.convert(target_mode)
    image = fit(image, spec)
    pixels = np.asarray(image, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if spec.invert if invert is None else invert:
        pixels = 255 - pixels
    return pixels


def load_pixels(source: ImageSource, spec: InputSpec, invert: bool | None = None) -> np.ndarray:
    """Any image source (path, PIL image, array) to model pixels; bad input raises ImageError."""
    return prepare_pixels(load_image(source, spec), spec, invert)


def _reopenable(image: Image.Image) -> bool:
    """An image Image.open made from a file and nobody decoded or changed yet."""
    filename = getattr(image, "filename", "")
    return bool(filename) and bool(getattr(image, "tile", None)) and Path(filename).is_file()


def load_image(source: ImageSource, spec: InputSpec, mode: str | None = None) -> Image.Image:
    """Any image source (path, PIL image, array) decoded (a JPEG at the scale `spec` needs, in `mode`, by default
    draft_mode(spec)); ImageError if bad."""
    if isinstance(source, (str, Path)):
        image = open_image(Path(source), (spec.width, spec.height), mode or draft_mode(spec))
    elif isinstance(source, Image.Image) and _reopenable(source):
        # An image opened but not yet decoded (Image.open in a notebook) takes the file's own path: the same
        # reduced-scale decode, so the same pixels and scores as the path gives; the caller's object is untouched.
        image = open_image(Path(source.filename), (spec.width, spec.height), mode or draft_mode(spec))
    elif isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = array_to_image(source)
    else:
        raise UsageError(f"cannot read an image from {type(source).__name__}; give a path, a PIL image or an array")
    return image


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
