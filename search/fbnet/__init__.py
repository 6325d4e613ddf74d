"""FBNet (Wu et al. 2019): its spaces and presets (`space`), supernet and latency cost."""
