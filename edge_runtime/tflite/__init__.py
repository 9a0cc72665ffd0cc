"""A .tflite file read from its bytes before any interpreter sees it: its structure checked (structure: the
schema-driven verifier in verifier, walking schema_tables, generated from TFLite's schema.fbs; then indices, shapes
and operators' options, the last in operators), what it needs from a runtime (requirements), the TFLite metadata
inside it (metadata), builtin operator names (builtin_ops)."""
