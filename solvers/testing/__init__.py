"""Test-problem generators for the tensor-level solvers (Hock–Schittkowski set, Poisson optimal control)."""
