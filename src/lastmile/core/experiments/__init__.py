"""Experiments: assignment (pure, deterministic hashing), the analysis schema and the
statistics (A/B, courier A/B, switchback, market A/B with diff-in-diff, interleaving)."""
