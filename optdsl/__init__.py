"""optdsl: declarative optimization models in Python, compiled to torch/cvxpy backends."""
__version__ = "0.1.0"
