"""RBAC as rules and as requests: the permissions the chart grants (rendered rules) and those the operator used
(the API server's audit log), in one shape, so the test can compare them both ways."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # Every request of a ServiceAccount of the operator's namespace (the operator's is the only one that runs).
  - level: Metadata
    userGroups: ["system:serviceaccounts:{namespace}"]
  - level: None
"""


@dataclass(frozen=True)
class Use:
    """One permission, as RBAC decides it: a verb on group/resource[/subresource] in a namespace (None: a
    request across every namespace, or of a cluster-scoped object)."""

    verb: str
    group: str
    resource: str
    namespace: str | None

    def __str__(self) -> str:
        where = f"in {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.verb} {self.group or 'core'}/{self.resource} {where}"


@dataclass(frozen=True)
class Grant:
    """One verb on one resource from one rule: cluster-wide (a ClusterRole's) or in a Role's namespace."""

    verb: str
    group: str
    resource: str
    namespace: str | None  # None: the ClusterRole
    rule: str  # which object says so, for messages

    def allows(self, use: Use) -> bool:
        return (self.verb == use.verb and self.group == use.group and self.resource == use.resource
                and (self.namespace is None or self.namespace == use.namespace))

    def __str__(self) -> str:
        return f"{self.rule}: {self.verb} {self.group or 'core'}/{self.resource}"


def uses(audit_log: Path, username: str) -> dict[Use, int]:
    """What `username` asked the API server, from the audit log (ResponseComplete events): each permission and
    the HTTP status its last request got."""
    found: dict[Use, int] = {}
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete" or event["user"]["username"] != username:
            continue
        ref = event.get("objectRef")
        if not ref:
            continue  # a non-resource URL (discovery, /version): every authenticated user may
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        use = Use(event["verb"], ref.get("apiGroup", ""), resource, ref.get("namespace"))
        found[use] = event.get("responseStatus", {}).get("code", 0)
    return found


def grants(documents: list[dict]) -> list[Grant]:
    """Every (verb, resource) the rendered ClusterRoles and Roles grant."""
    out = []
    for document in documents:
        if document["kind"] not in ("ClusterRole", "Role"):
            continue
        namespace = document["metadata"].get("namespace") if document["kind"] == "Role" else None
        rule_name = f"{document['kind']} {document['metadata']['name']}" + (f" ({namespace})" if namespace else "")
        for rule in document.get("rules") or []:
            assert not rule.get("resourceNames"), "the comparison below does not weigh resourceNames"
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out += [Grant(verb, group, resource, namespace, rule_name) for verb in rule["verbs"]]
    return out


def needed(grant: Grant, used: list[Use], all_grants: list[Grant]) -> bool:
    """Whether some request was allowed by `grant` and by no narrower one: a ClusterRole's grant is needed for a
    request no Role covers (across namespaces, or in a namespace without a Role), a Role's for one in its
    namespace that the ClusterRole does not cover."""
    for use in used:
        if not grant.allows(use):
            continue
        others = [g for g in all_grants if g is not grant and g.allows(use)]
        if grant.namespace is None and not any(g.namespace is not None for g in others):
            return True
        if grant.namespace is not None and not any(g.namespace is None for g in others):
            return True
    return False
