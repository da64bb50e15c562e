"""Replica-batched nets: K independent models evaluated as one (plain torch)."""
