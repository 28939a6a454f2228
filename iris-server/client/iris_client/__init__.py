"""Client of the iris-server model store (requests only), shared by the ML functions and the operator."""

from .client import ModelStoreClient
from .errors import CursorGone, Forbidden, ModelStoreError, NotFound, Rejected, Unauthorized, Unavailable
from .models import Artifact, Change, ChangePage, IssuedToken, ModelVersion

__all__ = [
    "Artifact",
    "Change",
    "ChangePage",
    "CursorGone",
    "Forbidden",
    "IssuedToken",
    "ModelStoreClient",
    "ModelStoreError",
    "ModelVersion",
    "NotFound",
    "Rejected",
    "Unauthorized",
    "Unavailable",
]
