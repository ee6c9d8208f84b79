"""The report's chart as a PNG: mail clients show neither SVG nor scripts, but they show an
image attached inline. Impressions are bars (left scale), clicks a line (right scale)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 440  # drawn at twice the 600 x 220 it is shown at, for sharp screens
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 110, 100, 30, 60
BAR = (37, 99, 235)
LINE = (217, 119, 6)
GRID = (229, 231, 235)
TEXT = (55, 65, 81)


@cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=22)


@cache
def _palette() -> Image.Image:
    """White, the chart's colours and their blends with white (for anti-aliased edges)."""
    colours = [(255, 255, 255)]
    for colour in (BAR, LINE, GRID, TEXT):
        for share in (1.0, 0.75, 0.5, 0.25):
            colours.append(
                (
                    round(colour[0] * share + 255 * (1 - share)),
                    round(colour[1] * share + 255 * (1 - share)),
                    round(colour[2] * share + 255 * (1 - share)),
                )
            )
    palette = Image.new("P", (1, 1))
    palette.putpalette([channel for colour in colours for channel in colour])
    return palette


def _nice_max(value: int) -> int:
    """A round top for an axis of four equal whole steps at or above ``value``."""
    quarter = max(1, -(-value // 4))
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if quarter <= step * magnitude:
                return 4 * step * magnitude
        magnitude *= 10


def _short(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return str(value)


def render_chart(series: Sequence[tuple[str, int, int]]) -> bytes:
    """A PNG of (label, impressions, clicks) points; labels are thinned to fit."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    top_impressions = _nice_max(max((p[1] for p in series), default=0))
    top_clicks = _nice_max(max((p[2] for p in series), default=0))
    for step in range(5):
        y = bottom - (bottom - top) * step / 4
        draw.line([(left, y), (right, y)], fill=GRID, width=2)
        draw.text(
            (left - 12, y), _short(top_impressions * step // 4), fill=BAR, font=font, anchor="rm"
        )
        draw.text(
            (right + 12, y), _short(top_clicks * step // 4), fill=LINE, font=font, anchor="lm"
        )
    count = max(1, len(series))
    slot = (right - left) / count
    every = max(1, -(-count // 10))
    points = []
    for index, (label, impressions, clicks) in enumerate(series):
        x0 = left + index * slot
        height = (bottom - top) * impressions / top_impressions
        draw.rectangle([(x0 + slot * 0.15, bottom - height), (x0 + slot * 0.85, bottom)], fill=BAR)
        points.append((x0 + slot / 2, bottom - (bottom - top) * clicks / top_clicks))
        if index % every == 0:
            draw.text((x0 + slot / 2, bottom + 12), label[-5:], fill=TEXT, font=font, anchor="mt")
    if len(points) > 1:
        draw.line(points, fill=LINE, width=5, joint="curve")
    for x, y in points:
        draw.ellipse([(x - 7, y - 7), (x + 7, y + 7)], fill=LINE)
    draw.line([(left, bottom), (right, bottom)], fill=TEXT, width=2)
    out = io.BytesIO()
    # A few colours suffice: a palette image encodes several times faster and smaller.
    image.quantize(palette=_palette(), dither=Image.Dither.NONE).save(
        out, format="PNG", compress_level=1
    )
    return out.getvalue()
