"""Will the links in Synapse's mails work? Every link starts with ``public_baseurl``; each kind
of link's path is requested without a token, and the answer tells whether Synapse itself
answered (its JSON error, its error page, its ``Server`` header) or something in front of it
did (a proxy's 404, a redirect to another host, a TLS error, a timeout).

    paths.py  pure: the links Synapse puts in its mails, from the config
    fetch.py  one bounded HTTP GET (through --resolver when given)
    judge.py  pure: who answered, and which proxy rule is missing
    stage.py  the probe's ``links`` stage
"""

from maildoctor.links.judge import LinkVerdict, judge_link
from maildoctor.links.paths import Link, links_from_config

__all__ = ["Link", "LinkVerdict", "judge_link", "links_from_config"]
