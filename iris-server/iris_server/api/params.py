"""What every route module shares: the validated path parameters, the caller, the documented error answers,
and the per-app Store the handlers work on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from ..auth import authenticate
from ..catalog import Catalog
from ..records import Missing
from ..config import Settings
from ..errors import ApiError
from ..names import DNS_LABEL_PATTERN, VERSION_REF_PATTERN
from ..ownership import Ownership
from ..schemas import ErrorOut
from ..storage import ArtifactBackend
from ..tokens import Principal
from ..uploads import UploadPipeline

ModelName = Annotated[
    str, Path(pattern=DNS_LABEL_PATTERN, max_length=63, description="model name: a DNS-1123 label")
]
VersionRefParam = Annotated[
    str,
    Path(pattern=VERSION_REF_PATTERN, max_length=63, description="a version number, 'latest' or an alias"),
]
AliasName = Annotated[
    str, Path(pattern=DNS_LABEL_PATTERN, max_length=63, description="alias name: a DNS label, not all digits")
]
NamespaceName = Annotated[
    str, Path(pattern=DNS_LABEL_PATTERN, max_length=63, description="a namespace (tenant): a DNS-1123 label")
]
Caller = Annotated[Principal, Depends(authenticate)]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: its error statuses (401 and 422 always), each a JSON ErrorOut."""
    return {status: {"model": ErrorOut} for status in (401, 422, *statuses)}


@dataclass
class Store:
    settings: Settings
    catalog: Catalog
    backend: ArtifactBackend
    admin_sha256: str
    uploads: UploadPipeline
    ownership: Ownership


def store_of(request: Request) -> Store:
    return request.app.state.store


def not_found(error: Missing) -> ApiError:
    return ApiError(404, str(error))
