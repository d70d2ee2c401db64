"""ReviewSense Lambda code: everything Chalice deploys besides ``app.py``.

Kept free of heavy dependencies (torch, transformers, sagemaker, pandas at import time) so each
function stays a small zip and cold-starts fast.
"""
