"""The report: which variant to ship and why, built from the folder's results and rendered as markdown, CSV and
JSON, with the device and quantization sections."""
