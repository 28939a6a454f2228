"""Drift detection: what counts as "already as wanted" for a child."""

from mlfunctions_operator.children import ANNOTATION_APPLIED, contains, stamp

WANTED = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n", "labels": {"a": "1"}},
          "data": {"k": "dg=="}}


def test_defaults_and_foreign_fields_are_not_drift():
    actual = {**stamp(WANTED), "type": "Opaque",
              "metadata": {**stamp(WANTED)["metadata"], "uid": "u", "resourceVersion": "9",
                           "labels": {"a": "1", "added-by": "someone"}}}
    assert contains(actual, stamp(WANTED))


def test_an_edited_value_or_missing_field_is_drift():
    stamped = stamp(WANTED)
    assert not contains({**stamped, "data": {"k": "changed"}}, stamped)
    assert not contains({**stamped, "data": {}}, stamped)
    assert not contains({**stamped, "metadata": {**stamped["metadata"], "labels": {}}}, stamped)


def test_lists_match_element_by_element():
    assert contains({"x": [{"a": 1, "default": 2}]}, {"x": [{"a": 1}]})
    assert not contains({"x": [{"a": 1}, {"a": 2}]}, {"x": [{"a": 1}]})
    assert not contains({"x": [{"a": 2}]}, {"x": [{"a": 1}]})


def test_the_stamp_changes_when_a_field_is_dropped():
    """A field we stop setting is still in the object (contains() cannot see that); the digest can."""
    without_labels = {**WANTED, "metadata": {"name": "s", "namespace": "n"}}
    old, new = stamp(WANTED), stamp(without_labels)
    assert old["metadata"]["annotations"][ANNOTATION_APPLIED] != new["metadata"]["annotations"][ANNOTATION_APPLIED]
    assert not contains(old, new)
    assert stamp(WANTED) == old  # deterministic
