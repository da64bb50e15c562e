"""QUBO Max-Cut reverse engineering: from a graph's Max-Cut QUBO, predict the graph."""
