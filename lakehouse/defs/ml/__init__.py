"""The ML layer: the daily GPS training set and the speed model trained on it."""
