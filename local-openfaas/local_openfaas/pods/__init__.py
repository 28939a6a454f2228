"""The pods backend: a function's replicas are the pods of its faas-netes-shaped Deployment on a real node."""
