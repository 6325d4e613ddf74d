"""Latency models: exact LUTs, per-family regressors, whole-network models, transfer, export.

Fitted from plain DataFrames shaped like the store's (`profiler` is never
imported here); saved as JSON; exported as arrays for the search.
"""

from hwnas.latency_models.io import load_model, save_model
from hwnas.latency_models.network import LatencyModel, fit_latency_model

__all__ = ["LatencyModel", "fit_latency_model", "load_model", "save_model"]
