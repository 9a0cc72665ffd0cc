"""The model folder's write side: one writer at a time and commits a crash cannot tear (commits), what each stage
consumed (stage_records), a stage's results read back from the folder (results), and copies of a folder that
hold its contract only (copies)."""
