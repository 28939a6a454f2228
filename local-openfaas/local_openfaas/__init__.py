"""A local OpenFaaS-compatible runtime and gateway (see local-openfaas/README.md)."""
