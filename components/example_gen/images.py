"""Image bytes for a tf.Example: PNG and JPEG kept as they are, other formats made PNG losslessly.

TensorFlow's decoders (and so Transform and the served model) read PNG and JPEG; GIF, PGM/PPM/
PNM/PBM, BMP, TIFF and WebP files are decoded with PIL and re-encoded as PNG without changing a
pixel. Animated GIF/TIFF/WebP: the first frame. Pixel formats: 1-bit becomes 8-bit grey; a
palette becomes grey when every palette colour is grey, else RGB (RGBA with transparency); 16-bit
grey (e.g. a 16-bit PGM or TIFF) stays 16-bit PNG, which the decoder later reduces to 8 bits;
CMYK/YCbCr/LAB/HSV become RGB; floating-point pixels are refused (no lossless PNG exists).
"""

import io

import numpy as np
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
_KEPT_MODES = ("L", "LA", "RGB", "RGBA", "I;16")
_COLOUR_MODES = ("CMYK", "YCbCr", "LAB", "HSV")
_UINT16_MAX = 65535


class ImageFileError(ValueError):
    """An input image or record is unusable; the message names the file."""


def is_png_or_jpeg(data: bytes) -> bool:
    return data.startswith((PNG_MAGIC, JPEG_MAGIC))


def check_png_or_jpeg(path: str, data: bytes) -> None:
    """Fails, naming `path`, unless `data` is a PNG or JPEG image that PIL can verify."""
    if not is_png_or_jpeg(data):
        raise ImageFileError(f"{path}: not a PNG or JPEG image (starts with {data[:8]!r})")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception as e:  # PIL raises many types for corrupt files.
        raise ImageFileError(f"{path}: corrupt image: {e}") from e


def _png_mode(path: str, image: Image.Image) -> Image.Image:
    """`image` in a mode PNG stores without losing pixel values."""
    mode = image.mode
    if mode in _KEPT_MODES:
        return image
    if mode.startswith("I;16"):
        return image.convert("I;16")
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        colour = image.convert("RGBA" if has_alpha else "RGB")
        rgb = np.asarray(colour)[..., :3]
        if not has_alpha and (rgb == rgb[..., :1]).all():
            return colour.convert("L")  # A grey palette: exact, since R = G = B.
        return colour
    if mode == "I":  # 32-bit integers, e.g. a 16-bit PGM/PPM as PIL opens it.
        low, high = image.getextrema()
        if low < 0 or high > _UINT16_MAX:
            raise ImageFileError(
                f"{path}: 32-bit integer pixels ({low}..{high}) do not fit a 16-bit PNG"
            )
        return Image.fromarray(np.asarray(image).astype(np.uint16))
    if mode == "F":
        raise ImageFileError(
            f"{path}: floating-point pixels are not supported; save the image as 8- or 16-bit"
        )
    if mode in _COLOUR_MODES:
        return image.convert("RGB")
    return image.convert("RGBA")


def transcode_to_png(path: str, data: bytes) -> bytes:
    """PNG bytes for the first frame of any image PIL reads; the error names `path`."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)
            image.load()
            frame = _png_mode(path, image)
            buffer = io.BytesIO()
            frame.save(buffer, format="PNG")
    except ImageFileError:
        raise
    except Exception as e:  # PIL raises many types for unreadable or corrupt files.
        raise ImageFileError(f"{path}: cannot decode image ({e}; starts with {data[:8]!r})") from e
    return buffer.getvalue()


def example_image_bytes(path: str, data: bytes) -> bytes:
    """What an example stores: PNG/JPEG bytes unchanged (after a check), others as PNG."""
    if is_png_or_jpeg(data):
        check_png_or_jpeg(path, data)
        return data
    return transcode_to_png(path, data)
