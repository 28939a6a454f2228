"""Runs an Argo CD resource health check (health.lua) the way Argo CD does: the object as the global `obj`, the
script's returned table as the health. Lua 5.1 (lupa's bundled interpreter), the dialect of Argo CD's gopher-lua."""

from __future__ import annotations

from pathlib import Path

from lupa import lua51

ARGOCD_DIR = Path(__file__).resolve().parents[2] / "docs" / "argocd" / "mlfunctions.dev"
ARGOCD_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def health_script(kind: str) -> Path:
    return ARGOCD_DIR / kind / "health.lua"


def health(script: Path, obj: dict) -> dict:
    """{'status': ..., 'message': ...} as Argo CD would show it for `obj`."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script.read_text())
    if result is None or lua.eval("type")(result) != "table":
        raise AssertionError(f"{script} returned {result!r}, not a table")
    return {key: value for key, value in dict(result).items()}
