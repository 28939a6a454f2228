"""Pure builders: spec (and what was observed) in, desired manifests or status out. No IO here."""
