"""The model folder's write side: one writer at a time and crash-proof commits (commits), what each stage consumed
(stage_records), a stage's results read back (results), copies that hold the folder's contract only (copies)."""
