"""PNG input for image models: pictures -> rows of pixel intensities shaped like the training images.

What a picture costs is bounded before any of it is decoded: the pixels of all the pictures in one request,
read from each PNG's IHDR header (width and height, the first 24 bytes), must fit a budget. Decoding then runs
in a small pool of worker threads (Pillow lets go of the GIL while it inflates and resamples), so the event loop
keeps answering health checks and small requests while a large picture is decoded; the pool's size bounds how
many pictures are held decoded in memory at once.

The geometry comes from the model ({"width": 8, "height": 8, "maxValue": 16} for digits). Any size of picture
is accepted and reduced by area averaging, the way scikit-learn's digits were made from 32x32 bitmaps. Digits
store ink as high values: a picture with a light background (dark ink on paper) is inverted, judged by its
border. Pillow is imported by the first decode, so models that take no pictures never load it."""

from __future__ import annotations

import asyncio
import io
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from input_errors import InvalidInput, TooLarge

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR = struct.Struct(">I4sII")  # the first chunk: length 13, b"IHDR", width, height

Pictures = Sequence[tuple[str, bytes]]  # (where the picture came from, for messages; its PNG bytes)


def png_size(data: bytes, where: str) -> tuple[int, int]:
    """Width and height from the PNG's header, without decoding anything."""
    if not data:
        raise InvalidInput(f"{where} is empty; expected a PNG image")
    if len(data) < len(SIGNATURE) + _IHDR.size or not data.startswith(SIGNATURE):
        raise InvalidInput(f"{where} is not a readable PNG image (it does not start with a PNG signature)")
    length, kind, width, height = _IHDR.unpack_from(data, len(SIGNATURE))
    if kind != b"IHDR" or length != 13 or not width or not height:
        raise InvalidInput(f"{where} is not a readable PNG image (its first chunk is not a valid IHDR)")
    return width, height


def check_pixel_budget(pictures: Pictures, budget: int) -> None:
    """All of a request's pictures together have at most `budget` pixels (TooLarge, 413, otherwise)."""
    total = 0
    for where, data in pictures:
        width, height = png_size(data, where)
        total += width * height
        if total > budget:
            so_far = "" if total == width * height else f", bringing the request to {total} pixels"
            raise TooLarge(
                f"{where} is {width}x{height} pixels{so_far}; at most {budget} pixels are decoded per request "
                "(MAX_REQUEST_PIXELS): send smaller pictures, or fewer per request"
            )


def png_rows(pictures: Pictures, image: dict[str, Any]) -> np.ndarray:
    """Decodes the pictures (call check_pixel_budget first): one row per picture."""
    return np.vstack([png_row(data, image, where) for where, data in pictures])


def png_row(data: bytes, image: dict[str, Any], where: str = "the body") -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    # The same refusals, worded the same, for a picture that did not go through the budget.
    png_size(data, where)
    try:
        gray = Image.open(io.BytesIO(data), formats=["PNG"]).convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise InvalidInput(f"{where} is not a readable PNG image ({error})") from None
    width, height = int(image["width"]), int(image["height"])
    if gray.size != (width, height):
        gray = gray.resize((width, height), Image.Resampling.BOX)
    pixels = np.asarray(gray, dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 127.5:
        pixels = 255.0 - pixels
    return (pixels * (float(image.get("maxValue", 255.0)) / 255.0)).reshape(1, width * height)


class PictureDecoder:
    """Decodes pictures in at most `threads` worker threads; requests beyond that wait their turn."""

    def __init__(self, budget: int, threads: int):
        self.budget = budget
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None

    async def rows(self, pictures: Pictures, image: dict[str, Any]) -> np.ndarray:
        check_pixel_budget(pictures, self.budget)  # on the loop: 24 bytes per picture, nothing decoded
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="png-decode")
        return await asyncio.get_running_loop().run_in_executor(self._pool, png_rows, pictures, image)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
