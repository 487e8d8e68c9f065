"""Derivative oracles: autograd and zeroth-order estimators."""
