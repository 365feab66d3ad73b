"""groklab: grokking and generalization circuits in transformers on two-hop reasoning."""

__version__ = "0.1.0"
