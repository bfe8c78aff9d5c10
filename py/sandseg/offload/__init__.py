"""Split offload: the wire format, the planner, and the client that runs a prefix of the
model locally and the rest on a server. Standard library only (runs in Pyodide)."""
