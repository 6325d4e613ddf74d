"""FBNetV2 (Wan et al. 2020): channel/resolution spaces, presets, the masked supernet and its cost."""
