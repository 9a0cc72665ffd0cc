"""Comparison: several model folders side by side (`compare`), and a regression gate against a baseline
(`compare NEW --baseline OLD`): files measured here, never records believed; paired tests, interleaved re-timing."""
