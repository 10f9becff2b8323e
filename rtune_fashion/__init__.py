"""rtune_fashion: find the best Keras models for Fashion-MNIST (and similar datasets) with Ray Tune."""

__version__ = "0.1.0"
