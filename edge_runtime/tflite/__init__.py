"""A .tflite file read from its bytes before any interpreter sees it: its structure checked (structure), what it
needs from a runtime (requirements), the TFLite metadata inside it (metadata), builtin operator names (builtin_ops)."""
