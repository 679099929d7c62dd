"""The reliability suite: faults injected into real processes (`nox -s reliability`, docs/reliability.md)."""
