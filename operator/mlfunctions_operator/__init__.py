"""mlfunctions operator: turns MLFunction resources into OpenFaaS functions with model-store credentials."""

GROUP = "mlfunctions.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FIELD_MANAGER = "mlfunctions-operator"
