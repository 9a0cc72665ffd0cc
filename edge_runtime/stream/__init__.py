"""Streams of images: frames split from Motion JPEG or PNG on a pipe (frames), classified one by one (live), images
as they land in a directory (watch), the `predict MODEL -` and `--watch` commands (cli) and their benchmark (bench)."""
