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
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import Invalid, NotFound

NAME_RE = re.compile(r"^[0-9a-f]{32}\.jpg$")
# Refuse absurd canvases (a few kB of PNG can claim 100k x 100k pixels).
MAX_PIXELS = 60_000_000


@dataclass(frozen=True)
class PhotoRule:
    """Where photos go and how big they may be (built from config by the door)."""

    directory: str
    max_bytes: int = 10 * 1024 * 1024
    max_px: int = 1600

    @classmethod
    def from_config(cls, cfg) -> PhotoRule:
        """The rule as the deployment configures it."""
        return cls(directory=cfg["MAINTENANCE_PHOTO_DIR"],
                   max_bytes=cfg["MAINTENANCE_PHOTO_MAX_BYTES"],
                   max_px=cfg["MAINTENANCE_PHOTO_MAX_PX"])


def store(data: bytes, rule: PhotoRule) -> str:
    """Check `data` is an image, re-encode it as a JPEG of at most `max_px` on its
    longest side with no metadata, write it under `rule.directory`; returns its file
    name. Raises Invalid `photo.too_large` or `photo.not_image`."""
    if len(data) > rule.max_bytes:
        raise Invalid("photo.too_large", mb=max(1, rule.max_bytes // (1024 * 1024)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()  # a truncated or fake file fails here
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise Invalid("photo.not_image")
                img = ImageOps.exif_transpose(img)
                img = img.convert("RGB")
                img.thumbnail((rule.max_px, rule.max_px))
                out = io.BytesIO()
                img.save(out, "JPEG", quality=85, optimize=True)  # no exif= : none written
    except Invalid:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        raise Invalid("photo.not_image") from None
    name = secrets.token_hex(16) + ".jpg"
    folder = Path(rule.directory)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(out.getvalue())
    return name


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
