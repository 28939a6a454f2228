"""iris-server: the mlfunctions model store, for models of any kind (the name is historical: README.md)."""

__version__ = "0.1.0"
