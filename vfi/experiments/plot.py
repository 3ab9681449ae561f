"""The curation experiment's chart, drawn with PIL (matplotlib is not a dependency and
DVC's HTML plots load their library from the web): one column per kind of training
triplets, a dot per seed at its held-out PSNR gain over the pretrained start, a bar at
the mean, the start's zero line."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

SIZE = (480, 320)
MARGIN = (60, 36, 20, 40)  # left, top, right, bottom
COLOURS = {"curated": (31, 119, 180), "naive": (214, 39, 40)}


def _font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def gain_plot(runs: pd.DataFrame, start_psnr: float, title: str) -> bytes:
    """PNG of ``runs``' (columns kind, seed, held_out_psnr) gains over ``start_psnr``."""
    gains = runs.assign(gain=runs["held_out_psnr"] - start_psnr)
    top = max(0.1, float(gains["gain"].max()))
    bottom = min(0.0, float(gains["gain"].min()))
    pad = 0.1 * (top - bottom)
    top, bottom = top + pad, bottom - pad
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    (w, h), (left, upper, right, lower) = SIZE, MARGIN

    def y_of(value: float) -> float:
        return upper + (h - upper - lower) * (top - value) / (top - bottom)

    draw.text((w // 2, 8), title, fill="black", font=_font(13), anchor="mt")
    draw.line([(left, upper), (left, h - lower), (w - right, h - lower)], fill="black")
    for value in np.linspace(bottom, top, 6):
        draw.line([(left - 4, y_of(value)), (left, y_of(value))], fill="black")
        draw.text((left - 6, y_of(value)), f"{value:+.2f}", fill="black", font=_font(),
                  anchor="rm")
    draw.line([(left, y_of(0.0)), (w - right, y_of(0.0))], fill=(150, 150, 150))
    draw.text((w - right - 2, y_of(0.0) - 2), "start", fill=(120, 120, 120), font=_font(10),
              anchor="rb")
    kinds = [k for k in COLOURS if k in set(gains["kind"])]
    slot = (w - left - right) / max(1, len(kinds))
    for i, kind in enumerate(kinds):
        values = gains.loc[gains["kind"] == kind, "gain"].to_numpy()
        cx = left + slot * (i + 0.5)
        mean = float(values.mean())
        draw.line([(cx - slot / 4, y_of(mean)), (cx + slot / 4, y_of(mean))],
                  fill=COLOURS[kind], width=3)
        for j, value in enumerate(values):
            x = cx + (j - (len(values) - 1) / 2) * 8
            draw.ellipse([x - 4, y_of(value) - 4, x + 4, y_of(value) + 4], fill=COLOURS[kind])
        draw.text((cx, h - lower + 6), f"{kind} ({mean:+.3f} dB, n={len(values)})",
                  fill="black", font=_font(), anchor="mt")
    draw.text((12, upper - 14), "dB", fill="black", font=_font())
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()
