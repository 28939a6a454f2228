"""The credential a train function's callers present: the operator keeps it in Secret `<mlfunction>-invoke`
(key `token`) in the MLFunction's own namespace, and the function knows only its SHA-256. The console reads
it server-side at each train call, sends it as a bearer token, and never keeps it or shows it."""

from __future__ import annotations

from .kube import Kube

SECRET_SUFFIX = "-invoke"
SECRET_KEY = "token"


def secret_name(mlfunction: str) -> str:
    return f"{mlfunction}{SECRET_SUFFIX}"


async def header_for(kube: Kube, namespace: str, mlfunction: str) -> dict[str, str]:
    token = await kube.secret_value(namespace, secret_name(mlfunction), SECRET_KEY)
    return {"Authorization": f"Bearer {token}"} if token else {}
