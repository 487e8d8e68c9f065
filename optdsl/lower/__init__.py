"""Lowerings of the one expression IR: torch (evaluation, autograd, GPU), cvxpy (DCP + exact convex
solves), sympy (printing, LaTeX, symbolic checks). Each is a table from op name to implementation."""
