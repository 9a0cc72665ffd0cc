"""edge-pipeline: train an image classifier, convert it to TFLite, check drift, benchmark, report.

Stages (data, train, convert, evaluate, benchmark, report) each take a small config and
return a result; they talk to each other through the model folder (see `pipeline.folder`).
"""

__version__ = "0.1.0"
