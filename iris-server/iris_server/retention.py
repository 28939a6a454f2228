"""The per-model cap on stored versions, so that no caller can fill the store's volume. A pure rule.

When an upload takes a model past its cap (IRIS_MAX_VERSIONS_PER_MODEL), the oldest versions go first, in the
same transaction that records the new one. Never removed: a version an alias points at (pinned, production,
a rollback target) and the newest version (the one being uploaded). When those protected versions alone fill
the cap there is nothing to remove, and the upload is refused (409) rather than the cap exceeded.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


class CapReached(Exception):
    pass


def to_prune(versions: Sequence[int], aliased: Collection[int], cap: int) -> list[int]:
    """The version numbers to delete so that at most `cap` of `versions` (ascending, the newest last) remain.

    Raises CapReached when the protected versions alone are more than the cap."""
    excess = len(versions) - cap
    if excess <= 0:
        return []
    newest = versions[-1]
    candidates = [number for number in versions if number != newest and number not in aliased]
    if len(candidates) < excess:
        raise CapReached(
            f"{len(versions) - len(candidates)} versions are aliased or newest and the cap is {cap}"
        )
    return candidates[:excess]
