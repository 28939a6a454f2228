"""PNG input for image models: one picture -> one row of pixel intensities shaped like the training images.

The geometry comes from the model ({"width": 8, "height": 8, "maxValue": 16} for digits). Any size of picture
is accepted and reduced by area averaging, the way scikit-learn's digits were made from 32x32 bitmaps. Digits
store ink as high values: a picture with a light background (dark ink on paper) is inverted, judged by its
border."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from input_errors import InvalidInput

MAX_PIXELS = 4096 * 4096  # refuse decompression bombs before decoding


def png_row(data: bytes, image: dict[str, Any], where: str = "the body") -> np.ndarray:
    if not data:
        raise InvalidInput(f"{where} is empty; expected a PNG image")
    try:
        picture = Image.open(io.BytesIO(data), formats=["PNG"])
        if picture.width * picture.height > MAX_PIXELS:
            raise InvalidInput(
                f"{where} is {picture.width}x{picture.height} pixels; at most {MAX_PIXELS} pixels"
            )
        gray = picture.convert("L")
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
