"""/v1/changes: the store's change feed, a long-poll over the change log (change_log.py, change_feed.py).

    GET /v1/changes                          -> {"changes": [], "cursor": N}: where "now" is, to follow from
    GET /v1/changes?after=N&timeout=30       -> the changes after N the caller may read, at once if there are
                                                any, else as soon as one is made (or [] after 30 s), and the
                                                cursor to ask with next
    410 {"error": "gone", "cursor": M}       -> N is older than the log keeps (or from another store): list what
                                                you follow again, then continue from M

A reader that lists once and then follows the feed learns of every later version and alias change within about
POLL_SECONDS, whichever worker or replica made it, with one request open instead of one poll per model.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request

from .. import change_feed
from ..errors import ApiError
from ..observability import CHANGE_WAITERS
from ..schemas import ChangeList
from .params import Caller, errors, store_of

router = APIRouter(prefix="/v1", tags=["changes"])

MAX_TIMEOUT_SECONDS = 60.0  # below common proxy idle timeouts; a follower simply asks again
MAX_LIMIT = 1000
DEFAULT_LIMIT = 500


@router.get("/changes", response_model=ChangeList, responses=errors(400, 410, 503))
async def changes(
    request: Request,
    caller: Caller,
    after: Annotated[int | None, Query(description="the cursor of an earlier answer; omitted: now")] = None,
    timeout: Annotated[
        float,
        Query(description=f"seconds to wait for a change when there is none (0 to {MAX_TIMEOUT_SECONDS:g})"),
    ] = 0.0,
    limit: Annotated[int, Query(description=f"at most this many changes (1 to {MAX_LIMIT})")] = DEFAULT_LIMIT,
):
    """The changes to versions and aliases after `after` of the models the caller may read (oldest first), and
    the cursor to ask with next. Waits up to `timeout` seconds for one when there is none yet."""
    _check_range("after", after, 0, 2**62)
    _check_range("timeout", timeout, 0, MAX_TIMEOUT_SECONDS)
    _check_range("limit", limit, 1, MAX_LIMIT)
    store = store_of(request)
    catalog = store.catalog
    if after is None:
        return {"changes": [], "cursor": catalog.latest_change(), "more": False}
    signal = change_feed.SIGNAL
    if timeout > 0 and signal.waiting >= store.settings.max_change_waiters:
        raise ApiError(
            503,
            f"{signal.waiting} requests are already waiting for changes; retry shortly",
            headers={"Retry-After": "5"},
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    cursor = after
    signal.waiting += 1
    CHANGE_WAITERS.set(signal.waiting)
    try:
        while True:
            page = catalog.changes_after(cursor, limit)
            if cursor < page.trimmed_through or cursor > page.latest:
                raise _gone(cursor, page.latest, page.trimmed_through)
            full = len(page.changes) == limit
            cursor = page.changes[-1].seq if full else page.latest
            shown = change_feed.visible(caller, page.changes, store.ownership)
            if shown or full:  # full: scanned as far as one answer may, whatever it found
                _still_valid(caller, catalog)
                return {
                    "changes": [change.public() for change in shown],
                    "cursor": cursor,
                    "more": cursor < page.latest,
                }
            remaining = deadline - loop.time()
            if remaining <= 0 or signal.draining:
                return {"changes": [], "cursor": cursor, "more": False}
            await signal.wait(remaining, page.latest, catalog.latest_change)
    finally:
        signal.waiting -= 1
        CHANGE_WAITERS.set(signal.waiting)


def _check_range(field: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise ApiError(
            400,
            f"{field} must be between {low:g} and {high:g}; got {value:g}",
            fields={"field": field, "min": low, "max": high},
        )


def _gone(cursor: int, latest: int, trimmed: int) -> ApiError:
    if cursor > latest:
        why = f"cursor {cursor} is ahead of this store's newest change {latest} (a new or restored store)"
    else:
        why = f"the change log no longer holds the changes after {cursor} (it keeps those after {trimmed})"
    return ApiError(
        410,
        f"{why}: list the models you follow again, then continue from cursor {latest}",
        code="gone",
        fields={"cursor": latest},
    )


def _still_valid(caller, catalog) -> None:
    """A token revoked while its request waited sees nothing more (revocation is effective at once)."""
    if caller.admin:
        return
    record = catalog.get_token(caller.id)
    if record is None or record.revoked_at is not None:
        raise ApiError(
            401,
            "the token is invalid or has been revoked",
            headers={"WWW-Authenticate": 'Bearer realm="iris"'},
        )
