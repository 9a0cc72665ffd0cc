"""Conversion to TFLite: the `convert` stage, the converter and its recipes, quantization, the mixed search,
per-layer error, TFLite metadata and the phone (MediaPipe) variants."""
