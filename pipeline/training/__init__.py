"""Training: the model registry, hyper-parameters and settings, tf.distribute, and the `train` stage.

The stage writes a model folder (model.keras, labels.txt, history, metadata.json) through pipeline.folder."""
