"""Synapse's logs read back: records, the failures found in them, their causes."""
