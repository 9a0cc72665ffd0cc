"""Measuring the variants on this machine: accuracy drift against Keras (`evaluate`) and latency (`benchmark`)."""
