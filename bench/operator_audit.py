"""The operator's API requests, counted from the API server's audit log (JSON lines; one request may log two
stages, a watch ResponseStarted and ResponseComplete: counted once, by auditID)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path


def requests_between(audit_log: Path, since: datetime, until: datetime) -> Counter:
    """Requests received in [since, until), by "verb resource[/subresource]"."""
    seen: dict[str, str] = {}
    with audit_log.open() as lines:
        for line in lines:
            event = json.loads(line)
            received = datetime.fromisoformat(event["requestReceivedTimestamp"])
            if not since <= received < until or event["auditID"] in seen:
                continue
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", event.get("requestURI", "?"))
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            seen[event["auditID"]] = f"{event['verb']} {resource}"
    return Counter(seen.values())
