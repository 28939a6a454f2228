"""GitOps health: kstatus (the library behind Flux's and kpt's readiness) and the Argo CD Lua checks agree with
each other on every state the operator's status builders can produce, and the Argo CD test cases pass."""

from __future__ import annotations

import pytest
import yaml
from argocd_lua import ARGOCD_DIR, ARGOCD_STATUSES, health, health_script
from chart_status_states import State, mlfunction_states, modelstore_states

STATES = [("MLFunction", s) for s in mlfunction_states()] + [("ModelStore", s) for s in modelstore_states()]
IDS = [f"{kind}-{state.name}" for kind, state in STATES]


@pytest.fixture(scope="module")
def computed(kstatus) -> dict[str, dict]:
    """kstatus's verdict on every state, in one run of the checker."""
    results = kstatus([state.body for _, state in STATES])
    return dict(zip(IDS, results))


@pytest.mark.parametrize(("kind", "state"), STATES, ids=IDS)
def test_kstatus_reads_each_state_as_intended(computed, kind: str, state: State):
    result = computed[f"{kind}-{state.name}"]
    assert "error" not in result, result
    assert result["status"] == state.kstatus, (
        f"{kind} {state.name}: kstatus says {result['status']} ({result['message']!r}), expected {state.kstatus}. "
        "Current means done (Ready=True, nothing pending), InProgress means work is under way, Failed means it "
        "cannot progress without the user; a state that is done but Ready=False keeps `kubectl wait`, Flux and "
        "kpt waiting forever")
    status = state.body.get("status", {})
    if state.kstatus in ("InProgress", "Failed") and \
            status.get("observedGeneration") == state.body["metadata"]["generation"]:
        # Decided by the conditions: kstatus shows the operator's own message, so users see why.
        assert result["message"] in {c["message"] for c in status["conditions"]}


@pytest.mark.parametrize(("kind", "state"), STATES, ids=IDS)
def test_argocd_health_follows_kstatus(kind: str, state: State):
    result = health(health_script(kind), state.body)
    assert result["status"] == state.argocd, f"{kind} {state.name}: Argo CD health {result}"
    assert result["message"], "every health verdict carries a message"


def _argocd_cases(kind: str) -> list[tuple[str, dict, dict]]:
    folder = ARGOCD_DIR / kind
    tests = yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]
    return [(kind, t["healthStatus"], yaml.safe_load((folder / t["inputPath"]).read_text())) for t in tests]


ARGOCD_CASES = _argocd_cases("MLFunction") + _argocd_cases("ModelStore")


@pytest.mark.parametrize(("kind", "expected", "obj"), ARGOCD_CASES,
                         ids=[f"{k}-{o['metadata'].get('deletionTimestamp') and 'deleting' or e['status']}-{i}"
                              for i, (k, e, o) in enumerate(ARGOCD_CASES)])
def test_argocd_health_test_cases(kind: str, expected: dict, obj: dict):
    """The cases in health_test.yaml, as Argo CD's own test runner checks built-in health scripts."""
    assert obj["kind"] == kind
    assert expected["status"] in ARGOCD_STATUSES
    assert health(health_script(kind), obj) == expected


@pytest.mark.parametrize("kind", ["MLFunction", "ModelStore"])
def test_argocd_test_cases_cover_every_state(kind: str):
    covered = {t["inputPath"] for t in yaml.safe_load((ARGOCD_DIR / kind / "health_test.yaml").read_text())["tests"]}
    states = mlfunction_states() if kind == "MLFunction" else modelstore_states()
    missing = {f"testdata/{s.name}.yaml" for s in states} - covered
    assert not missing, f"add test cases for {sorted(missing)} to {ARGOCD_DIR / kind / 'health_test.yaml'}"
    on_disk = {f"testdata/{p.name}" for p in (ARGOCD_DIR / kind / "testdata").glob("*.yaml")}
    assert on_disk == covered, "every testdata file is used by a test case"


def test_lua_check_fails_loudly_on_a_broken_script(tmp_path):
    """The harness itself: a script that returns nothing is an error, not a silent pass."""
    broken = tmp_path / "health.lua"
    broken.write_text("local hs = {}\n")
    with pytest.raises(AssertionError, match="not a table"):
        health(broken, {"metadata": {"name": "x"}})
