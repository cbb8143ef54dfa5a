"""The per-request set of DataLoaders. (Skeleton: implemented by loaders/*.py.)"""
