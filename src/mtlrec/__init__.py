"""mtlrec: multi-task learning for recommender ranking."""

__version__ = "0.1.0"
