"""The round trip: the mail Synapse would send, read back from a real mailbox over IMAP.

    verdicts.py  pure-ish: the received mail's Authentication-Results (parsed by authres),
                 its DKIM signatures verified here (dkimpy, keys asked of our resolver),
                 and the links it carries
    imap.py      wait for the mail by Message-ID in Inbox and Junk/Spam, fetch, delete (I/O)
"""

from maildoctor.roundtrip.verdicts import (
    AuthResult,
    DkimCheck,
    auth_results,
    links_in,
    verify_dkim,
)

__all__ = ["AuthResult", "DkimCheck", "auth_results", "links_in", "verify_dkim"]
