"""Comparison: several model folders side by side (`compare`), and a regression gate against a baseline
(`compare NEW --baseline OLD`), with paired accuracy tests and interleaved re-timing."""
