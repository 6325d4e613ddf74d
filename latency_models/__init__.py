"""Latency models: exact LUTs, per-family regressors, whole-network models, transfer, export.

Fitted from plain DataFrames shaped like the store's (`profiler` is never
imported here); saved as JSON; exported as arrays for the search.
"""

from hwnas.latency_models.io import load_model, save_model
from hwnas.latency_models.network import LatencyModel, fit_latency_model
from hwnas.latency_models.transfer import NetworkTransfer  # also registers its block model type for loading

__all__ = ["LatencyModel", "NetworkTransfer", "fit_latency_model", "load_model", "save_model"]
