"""What an example login looks like, so ``check`` (MD206) can tell it from a real one.

``maildoctor init`` writes the provider's ``user_example`` (``you@gmail.com``) when no
``--user`` is given, and documentation everywhere uses ``user@example.com`` or
``your.name@...``. Sent to a real server, these fail at login exactly like a placeholder
password, so they are recognised here: whole placeholder words, placeholder local parts at
any domain, common names at the documentation domains, and the provider's own example.
A real login at ``example.org`` (``synapse@example.org``, used throughout our own tests and
examples) is not an example: only the shapes below are.
"""

from __future__ import annotations

__all__ = ["is_example_login"]

#: Whole values that stand for "put the login here".
PLACEHOLDER_LOGINS = frozenset({
    "changeme", "username", "user", "user_name", "your_username", "your-username",
    "yourusername", "<user>", "<username>", "<login>", "login", "smtp_user", "smtp_username",
    "xxx", "todo", "fixme", "example",
})
#: Local parts that are placeholders at any domain (``you@gmail.com``, ``your.name@...``).
PLACEHOLDER_LOCAL_PARTS = frozenset({
    "you", "your", "yourname", "your.name", "your_name", "your-name", "your.email",
    "youremail", "your_email", "your-email", "yourusername", "username",
})
#: Local parts that are placeholders at the documentation domains (``user@example.com``).
EXAMPLE_LOCAL_PARTS = frozenset({
    "user", "me", "name", "email", "login", "foo", "john.doe", "jdoe", "john", "jane.doe",
})
#: First labels of domains that only appear in documentation.
EXAMPLE_DOMAINS = frozenset({"example", "domain", "yourdomain"})


def is_example_login(value: str, provider_example: str = "") -> bool:
    """Whether ``value`` (an ``smtp_user``) is an example rather than a real login.

    ``provider_example`` is the ``user_example`` of the provider in ``smtp_host`` (SES's
    ``AKIAXXXXXXXXXXXXXXXX``, Gmail's ``you@gmail.com``); comparison ignores case.
    """
    word = value.strip().lower()
    if word in PLACEHOLDER_LOGINS or (provider_example and word == provider_example.lower()):
        return True
    local, at, domain = word.rpartition("@")
    if not at:
        return False
    if local in PLACEHOLDER_LOCAL_PARTS:
        return True
    return domain.split(".")[0] in EXAMPLE_DOMAINS and local in EXAMPLE_LOCAL_PARTS
