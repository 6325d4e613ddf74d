"""Search spaces, blocks, supernets (FBNet DNAS, FBNetV2 DMaskingNAS), training and export.

`search.space` is the shared vocabulary every part may import; the rest of
this package needs torch and is imported on demand.
"""
