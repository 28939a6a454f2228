"""The user documentation keeps up with the code: every reason the operator can put in a condition is explained in
docs/troubleshooting.md, and the local links of the docs and README resolve."""

from __future__ import annotations

import ast
import re

import pytest
from chart_support import REPO_ROOT

OPERATOR = REPO_ROOT / "operator" / "mlfunctions_operator"
TROUBLESHOOTING = REPO_ROOT / "docs" / "troubleshooting.md"
# Ready=True reasons and the one deliberate off state need no troubleshooting entry of their own.
FINE = {"Deployed", "ScaledToZero", "Available", "Reachable"}


def _reasons_in(source: str) -> set[str]:
    """Reasons passed to Verdict.stalled_on / Verdict.waiting_for / StoreProblem / Verdict(reason=...)."""
    reasons = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in ("stalled_on", "waiting_for", "StoreProblem") and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            reasons.add(node.args[0].value)
        if name == "Verdict":
            reasons |= {k.value.value for k in node.keywords
                        if k.arg == "reason" and isinstance(k.value, ast.Constant)}
    return reasons


def operator_reasons() -> set[str]:
    reasons = set()
    for path in OPERATOR.rglob("*.py"):
        reasons |= _reasons_in(path.read_text())
    return reasons


def test_reason_finder_sees_every_form():
    source = ('Verdict.stalled_on("A", m)\nVerdict.waiting_for("B", m)\nStoreProblem("C", m, stalled=True)\n'
              'Verdict(ready=True, reason="D", message=m)\nVerdict.stalled_on(error.reason, m)\n')
    assert _reasons_in(source) == {"A", "B", "C", "D"}


def test_every_condition_reason_is_explained():
    reasons = operator_reasons()
    assert {"InvalidSpec", "NotOwned", "ModelNotFound", "FunctionNotReady"} <= reasons, "the finder found the code"
    documented = set(re.findall(r"`([A-Z][A-Za-z]+)`", TROUBLESHOOTING.read_text()))
    assert reasons - FINE - documented == set(), "explain these reasons in docs/troubleshooting.md"


@pytest.mark.parametrize("document", ["README.md", "docs/gitops.md", "docs/troubleshooting.md"])
def test_local_links_resolve(document):
    path = REPO_ROOT / document
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    missing = [t for t in local if not (path.parent / t).exists()]
    assert not missing, f"{document} links to missing files: {missing}"


def test_gitops_guide_installs_both_health_checks():
    guide = (REPO_ROOT / "docs" / "gitops.md").read_text()
    for kind in ("MLFunction", "ModelStore"):
        assert f"resource.customizations.health.mlfunctions.dev_{kind}" in guide
        assert f"docs/argocd/mlfunctions.dev/{kind}/health.lua" in guide
        assert (REPO_ROOT / "docs" / "argocd" / "mlfunctions.dev" / kind / "health.lua").exists()
