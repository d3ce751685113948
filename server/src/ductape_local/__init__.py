"""ductape-local: a Ductape-compatible webhook control plane and middleware on SQLite."""
