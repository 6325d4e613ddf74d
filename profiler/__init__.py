"""The profiler: which blocks to measure, in what order, on which devices, into which store.

    >>> from profiler.store import Store
    >>> Store("hwnas.db").blocks("cpu:onnxruntime?threads=1")   # a pandas DataFrame
"""
