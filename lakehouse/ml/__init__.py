"""Machine learning on the cleaned layer: a PyTorch Dataset over the training set, the speed model.

Everything here needs the optional ``ml`` extra (PyTorch, matplotlib); the rest of the lakehouse
never imports this package at load time, so it runs without it.
"""
