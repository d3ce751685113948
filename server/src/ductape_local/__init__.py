"""ductape-local: a Ductape-compatible webhook control plane and middleware on SQLite."""

__version__ = "0.1.0"
