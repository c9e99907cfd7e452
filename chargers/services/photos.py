"""Inspection photos: checked to be images, re-encoded without metadata, size-limited,
stored under a configured folder (under instance/ by default).

Re-encoding (decode the pixels, write a fresh JPEG) is what drops the EXIF block with
its GPS position, the camera serial and any comment: nothing of the upload's bytes but
its pixels survives. The EXIF orientation is applied first, so a phone photo still
stands the right way up.
"""

from __future__ import annotations

import io
import re
import secrets
import warnings
from pathlib import Path

from PIL import Image, ImageOps

from ..settings import PhotoRule
from .errors import Invalid, NotFound

NAME_RE = re.compile(r"^[0-9a-f]{32}\.jpg$")
# Only these decoders ever see an upload: never EPS (Ghostscript), PSD, TIFF, ICO…,
# whatever the file's name or first bytes claim.
FORMATS = ["JPEG", "PNG", "WEBP"]
# Refuse absurd canvases before decoding (a few kB of PNG can claim 100k x 100k
# pixels): per image, and for all the photos of one request together.
MAX_PIXELS = 50_000_000
MAX_REQUEST_PIXELS = 100_000_000


class BadImage(ValueError):
    """An upload that is not a photo we take; `reason` is `not_image` or `too_large`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def pixels_of(data: bytes) -> int:
    """The pixel count the image's header claims, read without decoding its pixels;
    BadImage when it is not a JPEG, PNG or WebP, or claims more than MAX_PIXELS."""
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
            pixels = probe.width * probe.height
    except Exception:  # an untrusted decoder: whatever it raises, it is not a photo
        raise BadImage("not_image") from None
    if pixels > MAX_PIXELS:
        raise BadImage("too_large")
    return pixels


def reencode(data: bytes, max_side: int) -> bytes:
    """`data` decoded (JPEG, PNG or WebP only, at most MAX_PIXELS) and written again as
    a plain JPEG of at most `max_side` on its longest side, upright, with no metadata.
    BadImage on anything else, including every decoder error."""
    pixels_of(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
                probe.verify()  # a truncated or fake file fails here
            with Image.open(io.BytesIO(data), formats=FORMATS) as img:
                img = ImageOps.exif_transpose(img)
                img = img.convert("RGB")
                img.thumbnail((max_side, max_side))
                out = io.BytesIO()
                img.save(out, "JPEG", quality=85, optimize=True)  # no exif= : none written
    except Exception:  # an untrusted decoder: whatever it raises, it is not a photo
        raise BadImage("not_image") from None
    return out.getvalue()


def check_request(datas: list[bytes]) -> None:
    """BadImage `too_large` when the photos of one request claim more than
    MAX_REQUEST_PIXELS together (checked before any is decoded)."""
    if sum(pixels_of(d) for d in datas) > MAX_REQUEST_PIXELS:
        raise BadImage("too_large")



def _refused(exc: BadImage, rule: PhotoRule) -> Invalid:
    if exc.reason == "too_large":
        return Invalid("photo.too_many_pixels", mp=MAX_PIXELS // 1_000_000)
    return Invalid("photo.not_image")


def store(data: bytes, rule: PhotoRule) -> str:
    """Check `data` is an image, re-encode it as a JPEG of at most `max_px` on its
    longest side with no metadata, write it under `rule.directory`; returns its file
    name. Raises Invalid `photo.too_large` or `photo.not_image`."""
    return store_all([data], rule)[0]


def store_all(datas: list[bytes], rule: PhotoRule) -> list[str]:
    """`store` for the photos of one request: all checked (bytes, pixels each and
    together) before any is decoded, all stored or none (no file left on a refusal)."""
    if any(len(d) > rule.max_bytes for d in datas):
        raise Invalid("photo.too_large", mb=max(1, rule.max_bytes // (1024 * 1024)))
    try:
        check_request(datas)
        jpegs = [reencode(d, rule.max_px) for d in datas]
    except BadImage as exc:
        raise _refused(exc, rule) from None
    folder = Path(rule.directory)
    names: list[str] = []
    try:
        for jpeg in jpegs:
            folder.mkdir(parents=True, exist_ok=True)
            name = secrets.token_hex(16) + ".jpg"
            (folder / name).write_bytes(jpeg)
            names.append(name)
    except BaseException:
        for name in names:
            discard(name, rule)
        raise
    return names


def path_of(name: str, rule: PhotoRule) -> Path:
    """The stored file of a photo name (only names `store` makes; never a path)."""
    if not NAME_RE.match(name or ""):
        raise NotFound("photo.none")
    path = Path(rule.directory) / name
    if not path.is_file():
        raise NotFound("photo.none")
    return path


def discard(name: str, rule: PhotoRule) -> None:
    """Remove a stored photo whose record was never signed (a refused check)."""
    if NAME_RE.match(name or ""):
        (Path(rule.directory) / name).unlink(missing_ok=True)
