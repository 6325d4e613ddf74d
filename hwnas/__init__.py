"""hwnas: the composition root. The CLI and the glue that wires the parts together."""

__version__ = "0.1.0"
