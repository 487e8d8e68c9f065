"""DAG structure learning on tensors (issue 9): NOTEARS, log-det central path, TOPO, CoLiDE.

    from optdsl.solvers import dag
    out = dag.learn(X)                     # x: thresholded W, always a DAG; extras["edges"]
    out = dag.fit(loss_fn, d)              # any smooth torch loss subject to acyclicity

The methods themselves live in the submodules ``dag.notears``, ``dag.logdet``, ``dag.topo``,
``dag.colide`` (each a function of the same name). See docs/backends/dag.md.
"""
from optdsl.solvers.dag.acyclicity import h_expm, h_logdet, h_value
from optdsl.solvers.dag.api import fit, learn
from optdsl.solvers.dag.metrics import count_accuracy, edge_list
from optdsl.solvers.dag.threshold import is_dag, threshold_dag

__all__ = ["learn", "fit", "h_expm", "h_logdet", "h_value", "threshold_dag", "is_dag", "count_accuracy",
           "edge_list"]
