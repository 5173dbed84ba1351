"""Helpers for the status tests: a small PNG decoder (stdlib zlib) and colour counting."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest


def need_chromium() -> str:
    """Debian's chromium; fail under CI (.ci/run installs it), skip elsewhere."""
    from brownout.status.chromium import find_chromium

    path = find_chromium()
    if path:
        return path
    msg = "chromium not found: apt-get install chromium (Debian's package; .ci/run installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)
    raise AssertionError  # unreachable


class Image:
    """Decoded 8-bit RGB(A) pixels, row-major."""

    def __init__(self, width: int, height: int, rows: list[bytes], channels: int) -> None:
        self.width, self.height, self.rows, self.channels = width, height, rows, channels

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        c = self.channels
        r = self.rows[y]
        return r[x * c], r[x * c + 1], r[x * c + 2]

    def count(self, rgb: tuple[int, int, int], box: tuple[float, float, float, float] | None = None,
              tol: int = 12) -> int:
        """Pixels within ``tol`` of ``rgb`` (per channel) inside ``box`` = (x, y, w, h)."""
        x0, y0, w, h = box if box is not None else (0, 0, self.width, self.height)
        xs = range(max(0, int(x0)), min(self.width, int(x0 + w)))
        n = 0
        for y in range(max(0, int(y0)), min(self.height, int(y0 + h))):
            for x in xs:
                p = self.pixel(x, y)
                if abs(p[0] - rgb[0]) <= tol and abs(p[1] - rgb[1]) <= tol and abs(p[2] - rgb[2]) <= tol:
                    n += 1
        return n


def decode_png(data: bytes) -> Image:
    """8-bit non-interlaced RGB or RGBA PNG (what Chromium's screenshots are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6), (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f in (0, 1, 2):  # the common filters, vectorized
            arr = np.frombuffer(bytes(line), dtype=np.uint8).astype(np.int64)
            if f == 1:
                arr = np.cumsum(arr.reshape(-1, channels), axis=0).ravel()
            elif f == 2:
                arr = arr + np.frombuffer(bytes(prev), dtype=np.uint8)
            line = bytearray((arr & 255).astype(np.uint8).tobytes())
            rows.append(bytes(line))
            prev = line
            continue
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return Image(width, height, rows, channels)


def hex_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def over_white(color: str, opacity: float) -> tuple[int, int, int]:
    """What ``color`` at ``opacity`` looks like on a white page."""
    r, g, b = hex_rgb(color)
    return tuple(round(opacity * v + (1 - opacity) * 255) for v in (r, g, b))  # type: ignore[return-value]

