"""ReviewSense model training: featurize, train, evaluate, baselines and candidate search.

The modules are SageMaker script-mode / Processing scripts that also run locally with the same
arguments; heavy libraries (torch, transformers, scikit-learn) are imported inside functions so that
lighter code (model I/O, data loading, the CLI) can import this package cheaply.
"""
