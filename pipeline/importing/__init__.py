"""`edge-pipeline import`: a classifier made elsewhere (Keras, SavedModel, TFLite) written as an ordinary model folder.

sources (what a source is, and loading it safely), graphs (the preprocessing and the class head put into a Keras or
SavedModel graph), measure (the source's own top-1 on the test split), stage (the stage: config, result, the folder).
"""
