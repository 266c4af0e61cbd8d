"""The mails Synapse sends, built as Synapse builds them, and their templates."""
