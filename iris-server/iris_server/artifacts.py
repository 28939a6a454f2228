"""Which artifacts the store accepts: formats that load without running code, checked before storing.

Pickle (and joblib, which is pickle, often compressed) executes arbitrary code on load, so it is refused
outright. ONNX is a protobuf: parsing and checking it runs no code; a model that points at external data is
refused (onnx_tensors.py). skops files are zip archives whose schema names every type they would construct;
their directory is checked first (archives.py: no zip bombs), then `skops.io.get_untrusted_types` lists the
types outside skops' safe set, and we accept those only if they are scikit-learn classes.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from .archives import ArchiveLimits, ArchiveRefused, NotAnArchive, check_zip
from .onnx_tensors import external_tensors

FORMATS = ("onnx", "skops")
_REFUSED_FORMATS = {"pickle", "pkl", "joblib", "cloudpickle", "dill"}
_EXPORT_HINT = "export the model to ONNX (skl2onnx.to_onnx) or save it with skops.io.dump"

# Leading bytes of pickles (protocol 2+ starts with PROTO) and of the containers joblib compresses them in.
_PICKLE_MAGIC = tuple(b"\x80" + bytes([protocol]) for protocol in range(2, 6))
_COMPRESSED_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
    b"\x5d\x00\x00": "lzma",
    b"\x04\x22\x4d\x18": "lz4",
    b"\x78\x01": "zlib",
    b"\x78\x5e": "zlib",
    b"\x78\x9c": "zlib",
    b"\x78\xda": "zlib",
    b"ZF": "joblib (zlib)",
}
_ZIP_MAGIC = b"PK\x03\x04"
_TRUSTED_SKOPS_TYPE = re.compile(r"^sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class Refusal(Enum):
    """Why an upload is refused; the API maps each to its HTTP status."""

    UNSAFE_FORMAT = "unsafe_format"  # 415: a format that runs code on load
    UNSUPPORTED_FORMAT = "unsupported_format"  # 415: a format the store does not know
    INVALID = "invalid_artifact"  # 422: claims a safe format but is not a valid one
    UNSAFE_ARCHIVE = "unsafe_archive"  # 422: an archive over the member, size or ratio limits (a zip bomb)


class ArtifactRefused(Exception):
    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def check_format_name(fmt: str) -> None:
    if fmt.lower() in _REFUSED_FORMATS:
        raise ArtifactRefused(
            Refusal.UNSAFE_FORMAT,
            f"format {fmt!r} is refused: loading it runs arbitrary code; {_EXPORT_HINT}",
        )
    if fmt not in FORMATS:
        raise ArtifactRefused(
            Refusal.UNSUPPORTED_FORMAT, f"format must be one of {', '.join(FORMATS)}; got {fmt!r}"
        )


def sniff_unsafe(head: bytes) -> None:
    """Refuse pickles and compressed (joblib) payloads by their leading bytes, whatever format they claim."""
    if head.startswith(_PICKLE_MAGIC):
        raise ArtifactRefused(
            Refusal.UNSAFE_FORMAT,
            f"this is a pickle (or joblib) file, which runs arbitrary code when loaded; {_EXPORT_HINT}",
        )
    for magic, kind in _COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            raise ArtifactRefused(
                Refusal.UNSAFE_FORMAT,
                f"this is {kind}-compressed data, as joblib writes compressed pickles; "
                "the store accepts only "
                f"uncompressed ONNX or skops; {_EXPORT_HINT}",
            )


@dataclass(frozen=True)
class Inspection:
    """What the store learned from the artifact itself; recorded as metadata["artifact"]."""

    details: dict[str, Any]


def inspect(path: Path, fmt: str, archive_limits: ArchiveLimits) -> Inspection:
    """Validate the staged artifact at `path` as `fmt`; raises ArtifactRefused when it is not acceptable."""
    check_format_name(fmt)
    with path.open("rb") as handle:
        head = handle.read(8)
    sniff_unsafe(head)
    if fmt == "onnx":
        return _inspect_onnx(path)
    return _inspect_skops(path, head, archive_limits)


def _inspect_onnx(path: Path) -> Inspection:
    import onnx  # heavy import, only on uploads

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and kin: not an ONNX model at all
        raise ArtifactRefused(Refusal.INVALID, f"not a valid ONNX model: {_first_line(error)}") from error
    # Before the checker, which would look for external data files relative to the server's working directory.
    external = list(external_tensors(model))
    if external:
        raise ArtifactRefused(
            Refusal.INVALID,
            f"the ONNX model keeps tensors in external data files ({'; '.join(external[:3])}"
            f"{'; ...' if len(external) > 3 else ''}); upload a self-contained model",
        )
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # ValidationError and kin: all mean "not a valid ONNX model"
        raise ArtifactRefused(Refusal.INVALID, f"not a valid ONNX model: {_first_line(error)}") from error
    if not model.graph.node:
        raise ArtifactRefused(Refusal.INVALID, "not a valid ONNX model: the graph has no nodes")
    return Inspection(
        {
            "ir_version": model.ir_version,
            "opset": {entry.domain or "ai.onnx": entry.version for entry in model.opset_import},
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "inputs": [item.name for item in model.graph.input],
            "outputs": [item.name for item in model.graph.output],
        }
    )


def _inspect_skops(path: Path, head: bytes, archive_limits: ArchiveLimits) -> Inspection:
    if not head.startswith(_ZIP_MAGIC):
        raise ArtifactRefused(Refusal.INVALID, "not a skops file: a skops file is a zip archive")
    try:
        inflated = check_zip(path, archive_limits)  # before skops reads a byte of any member
    except NotAnArchive as error:
        raise ArtifactRefused(Refusal.INVALID, f"not a valid skops file: {error}") from error
    except ArchiveRefused as error:
        raise ArtifactRefused(Refusal.UNSAFE_ARCHIVE, f"the skops file is refused: {error}") from error
    from skops.io import get_untrusted_types  # heavy import, only on uploads

    try:
        untrusted = get_untrusted_types(file=path)
    except Exception as error:  # a zip without skops' schema, or a corrupt one
        raise ArtifactRefused(Refusal.INVALID, f"not a valid skops file: {_first_line(error)}") from error
    refused = sorted(name for name in untrusted if not _is_sklearn_class(name))
    if refused:
        raise ArtifactRefused(
            Refusal.INVALID,
            "the skops file references types outside the allow-list (scikit-learn classes): "
            + ", ".join(refused),
        )
    return Inspection({"skops_types_beyond_defaults": sorted(untrusted), "inflated_bytes": inflated})


def _is_sklearn_class(dotted: str) -> bool:
    """True only for a class defined in sklearn (not a function, such as a FunctionTransformer may hold)."""
    if not _TRUSTED_SKOPS_TYPE.fullmatch(dotted):
        return False
    module_name, _, attribute = dotted.rpartition(".")
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return False
    return isinstance(value, type) and value.__module__.startswith("sklearn")


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
