"""What Synapse will do, from its settings and what a probe observed."""
