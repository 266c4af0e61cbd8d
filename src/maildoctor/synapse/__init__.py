"""synapse."""
