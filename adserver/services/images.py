"""Creative images, checked before they are stored: PNG, JPEG, GIF or WebP only, at most
300 KB, fully decodable, and (for image creatives) exactly the declared size.

What is stored is re-encoded from the decoded pixels, never the bytes as uploaded: metadata
(EXIF with its GPS position, comments, colour profiles) goes, and so does anything appended to
a valid image (a polyglot carrying a script or an HTML page), while every frame of an animation
is kept with its timing. SVG is refused: it is a document that can carry script, and sanitising
it is a bigger promise than an ad server should make."""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageSequence, UnidentifiedImageError

from adserver.services.errors import ServiceError

MAX_BYTES = 300 * 1024
#: The largest image accepted, checked on the header before any pixel is decoded: a tiny
#: file can declare 20,000 x 20,000 pixels and take gigabytes to decode.
MAX_SIDE = 4000
MAX_PIXELS = 4_000_000
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    media_type: str
    width: int
    height: int


def decode_base64(field: str, text: str) -> bytes:
    """Base64 (or a ``data:`` URL holding it) as bytes, or a 422 on ``field``."""
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ServiceError(f"{field}: not valid base64", {field: "is not valid base64"}) from exc


def check_image(
    data: bytes, *, field: str = "image", size: tuple[int, int] | None = None
) -> CheckedImage:
    """The image re-encoded without metadata, or a 422 on ``field`` saying what is wrong.
    With ``size``, its decoded pixel size must be exactly that."""

    def refuse(why: str) -> ServiceError:
        return ServiceError(f"{field}: {why}", {field: why})

    if len(data) > MAX_BYTES:
        raise refuse(f"is {len(data)} bytes, more than the {MAX_BYTES} allowed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise refuse(f"declares a size larger than {MAX_SIDE} on a side allowed") from None
    except UnidentifiedImageError:
        raise refuse("must be a PNG, JPEG, GIF or WebP image") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise refuse(f"cannot be read: {exc}") from None
    width, height = image.size
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise refuse(f"is {width}x{height}: a size larger than {MAX_SIDE} on a side allowed")
    if size is not None and (width, height) != size:
        raise refuse(f"is {width}x{height} pixels, not the declared {size[0]}x{size[1]}")
    assert image.format is not None
    try:
        return CheckedImage(_reencode(image), FORMATS[image.format], width, height)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise refuse(f"cannot be decoded (truncated or damaged): {exc}") from None


def _reencode(image: Image.Image) -> bytes:
    """Decode every frame and write them again, keeping only what displaying them needs."""
    kind = image.format
    out = io.BytesIO()
    if kind == "JPEG":
        image.load()
        # "keep" reuses the upload's quantisation tables: no second generation of loss.
        image.save(out, "JPEG", quality="keep", optimize=True)
        return out.getvalue()
    frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
    first = frames[0]
    if kind == "PNG":
        animated = {
            "save_all": True,
            "append_images": frames[1:],
            "duration": [frame.info.get("duration", 100) for frame in frames],
            "loop": image.info.get("loop", 0),
        }
        first.save(out, "PNG", optimize=True, **(animated if len(frames) > 1 else {}))
    elif kind == "GIF":
        options = {"loop": image.info["loop"]} if "loop" in image.info else {}
        durations = [frame.info.get("duration", 100) for frame in frames]
        first.save(
            out,
            "GIF",
            save_all=len(frames) > 1,
            append_images=frames[1:],
            duration=durations if len(frames) > 1 else durations[0],
            disposal=2 if len(frames) > 1 else 0,
            **options,
        )
    else:
        durations = [frame.info.get("duration", 100) for frame in frames]
        first.save(
            out,
            "WEBP",
            save_all=len(frames) > 1,
            append_images=frames[1:],
            duration=durations,
            loop=image.info.get("loop", 0),
            quality=90,
            method=4,
        )
    return out.getvalue()


def stored_size(data: bytes) -> tuple[int, int]:
    """The pixel size of an image already checked and stored."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size
