"""A model folder's read side: the one parser of metadata.json (records), the folder as its last commit left it
(reader), and which model file runs (selection)."""
