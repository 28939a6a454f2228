"""The predict form fitted to a model, and the request it becomes. Pure.

What a model takes is in its store metadata (the train function writes it): `image` ({width, height}) for
image models, else `features` and `featureNames`. Without metadata (no read token, store down) the form asks
for the rows as JSON, which every predict function accepts."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_JSON_BYTES = 256 * 1024
# A sensible first row for the bundled datasets whose features a person can type (a setosa flower).
EXAMPLES = {"iris": [5.1, 3.5, 1.4, 0.2]}


class FormError(ValueError):
    """The form's input cannot be sent: the message names the field."""


@dataclass(frozen=True)
class Field:
    name: str  # the form field, f0, f1, ...
    label: str
    value: str = ""


@dataclass(frozen=True)
class PredictForm:
    kind: str  # numbers | image | json
    fields: list[Field] = field(default_factory=list)
    image: dict[str, Any] | None = None
    classes: list[str] = field(default_factory=list)
    classification: bool = True
    note: str = ""  # why the form is the generic one


def for_model(metadata: dict[str, Any] | None, note: str = "") -> PredictForm:
    if not metadata:
        return PredictForm(kind="json", note=note or "the model's metadata could not be read")
    classification = metadata.get("task", "classification") == "classification"
    classes = [str(c) for c in metadata.get("classes") or []]
    if metadata.get("image"):
        return PredictForm(
            kind="image", image=metadata["image"], classes=classes, classification=classification
        )
    count = metadata.get("features")
    if not isinstance(count, int) or count < 1 or count > 64:
        return PredictForm(
            kind="json",
            classes=classes,
            classification=classification,
            note="the model has too many features for a form" if isinstance(count, int) else "",
        )
    names = metadata.get("featureNames") or []
    example = EXAMPLES.get(metadata.get("dataset", ""), [])
    fields = [
        Field(
            f"f{i}",
            str(names[i]) if i < len(names) else f"feature {i + 1}",
            str(example[i]) if i < len(example) else "",
        )
        for i in range(count)
    ]
    return PredictForm(kind="numbers", fields=fields, classes=classes, classification=classification)


def with_values(form: PredictForm, values: dict[str, str]) -> PredictForm:
    """The same form showing what was typed (after a call, or an error)."""
    return PredictForm(
        kind=form.kind,
        fields=[Field(f.name, f.label, values.get(f.name, f.value)) for f in form.fields],
        image=form.image,
        classes=form.classes,
        classification=form.classification,
        note=form.note,
    )


def request_body(form: PredictForm, values: dict[str, str], upload: bytes | None) -> tuple[bytes, str]:
    """(body, content type) of the KServe v1 request for the form's input; FormError names what is wrong."""
    probabilities = form.classification
    if form.kind == "numbers":
        row = [_number(f, values.get(f.name, "")) for f in form.fields]
        document: dict[str, Any] = {"instances": [row]}
    elif form.kind == "image":
        picture = upload or _data_url(values.get("drawing", ""))
        if not picture:
            raise FormError("draw a digit on the canvas or choose a PNG image to upload")
        if len(picture) > MAX_IMAGE_BYTES:
            raise FormError(f"the image is larger than {MAX_IMAGE_BYTES // 1024} KiB")
        if not picture.startswith(PNG_SIGNATURE):
            raise FormError("the image must be a PNG file")
        document = {"instances": [{"b64": base64.b64encode(picture).decode()}]}
    else:
        document = {"instances": _instances(values.get("instances", ""))}
    if probabilities:
        document["probabilities"] = True
    return json.dumps(document).encode(), "application/json"


def _number(form_field: Field, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise FormError(
            f"{form_field.label}: {raw.strip()!r} is not a number"
            if raw.strip()
            else f"{form_field.label}: a number is needed"
        ) from None
    if not math.isfinite(value):
        raise FormError(f"{form_field.label}: must be a finite number")
    return value


def _data_url(value: str) -> bytes:
    """The canvas' PNG, as the browser's toDataURL gives it."""
    prefix = "data:image/png;base64,"
    if not value:
        return b""
    if not value.startswith(prefix) or len(value) > MAX_IMAGE_BYTES * 2:
        raise FormError("the drawing was not sent as a PNG")
    try:
        return base64.b64decode(value[len(prefix) :], validate=True)
    except binascii.Error:
        raise FormError("the drawing was not sent as a PNG") from None


def _instances(raw: str) -> list:
    if len(raw) > MAX_JSON_BYTES:
        raise FormError(f"instances: at most {MAX_JSON_BYTES // 1024} KiB")
    try:
        rows = json.loads(raw)
    except json.JSONDecodeError as error:
        raise FormError(
            f"instances: not JSON ({error.msg}); expected rows like [[5.1, 3.5, 1.4, 0.2]]"
        ) from None
    if not isinstance(rows, list) or not rows:
        raise FormError("instances: expected a non-empty list of rows, like [[5.1, 3.5, 1.4, 0.2]]")
    return rows


def picture_url(body: bytes) -> str:
    """The PNG an image request carries, as a data: URL for an <img> (the page's CSP allows data: images)."""
    try:
        return "data:image/png;base64," + json.loads(body)["instances"][0]["b64"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


@dataclass(frozen=True)
class Answer:
    prediction: Any
    probabilities: list[tuple[str, float]]  # highest first
    version: int | None
    rows: int


def read_answer(document: Any) -> Answer:
    """The first row's answer from a KServe v1 answer; ValueError when it is not one."""
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("predictions"), list)
        or not document["predictions"]
    ):
        raise ValueError("the answer has no predictions")
    probabilities: list[tuple[str, float]] = []
    first = (document.get("probabilities") or [None])[0]
    if isinstance(first, dict):
        probabilities = sorted(((str(k), float(v)) for k, v in first.items()), key=lambda kv: -kv[1])
    model = document.get("model") or {}
    version = model.get("version") if isinstance(model.get("version"), int) else None
    return Answer(document["predictions"][0], probabilities, version, len(document["predictions"]))
