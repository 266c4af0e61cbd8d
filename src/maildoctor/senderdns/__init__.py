"""Will receivers accept the mail Synapse sends? The sender domain's DNS (SPF, DKIM, DMARC,
MX) for the address Synapse really uses, judged as Gmail-class receivers judge it.

    records.py  pure: SPF/DMARC text, the organizational domain, zone lines to paste
    spf.py      pyspf's evaluation, its DNS routed through our resolver
    gather.py   the DNS questions (I/O)          -> facts.SenderFacts
    verdict.py  pure: facts -> ok / at-risk / will-fail, findings, the record to publish
    stage.py    the probe's ``sender-dns`` stage
"""

from maildoctor.senderdns.facts import DkimKey, SenderFacts
from maildoctor.senderdns.gather import gather
from maildoctor.senderdns.verdict import Finding, Verdict, judge

__all__ = ["DkimKey", "Finding", "SenderFacts", "Verdict", "gather", "judge"]
