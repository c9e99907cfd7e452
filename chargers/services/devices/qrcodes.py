"""QR codes that open a pile's public page, as inline SVG for a printable sheet."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg


def pile_url(pile_id: str, base_url: str) -> str:
    """The public address of the pile's page under the deployment's PUBLIC_BASE_URL."""
    return f"{base_url.rstrip('/')}/p/{pile_id}"


def pile_qr_svg(pile_id: str, base_url: str) -> str:
    """An SVG QR code of pile_url() (no external requests, prints sharp)."""
    img = qrcode.make(pile_url(pile_id, base_url), image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buf = io.BytesIO()
    img.save(buf)
    svg = buf.getvalue().decode()
    # Drop the XML declaration so the SVG can sit inline in HTML.
    return svg[svg.index("<svg"):]


def text_qr_svg(text: str) -> str:
    """An inline SVG QR code of any text (a WeChat Pay Native code_url)."""
    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buf = io.BytesIO()
    img.save(buf)
    svg = buf.getvalue().decode()
    return svg[svg.index("<svg"):]
