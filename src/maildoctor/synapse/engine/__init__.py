"""Twisted's SMTP client run as Synapse runs it, in a child process under a watchdog."""
