"""Linear solvers: direct, CG, randomized sketching, SOR with a bandit-tuned relaxation factor."""
