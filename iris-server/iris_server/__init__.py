"""iris-server: the mlfunctions model store."""

__version__ = "0.1.0"
