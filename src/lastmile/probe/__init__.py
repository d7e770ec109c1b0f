"""The synthetic probe: a full journey through a deployment's public API (docs/probe.md)."""
