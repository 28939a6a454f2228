"""The Kubernetes backend of the local OpenFaaS: faas-netes's Function -> Deployment + Service translation
(objects.py, status.py: pure) and a reconciler that keeps them for every Function in a namespace (see README.md)."""
