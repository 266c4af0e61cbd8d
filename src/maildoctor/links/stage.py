"""The probe's ``links`` stage: every kind of link in Synapse's mails, requested once
(links sharing a proxy location are asked once each; every request bounded)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from maildoctor.links.fetch import fetch
from maildoctor.links.judge import LinkVerdict, judge_link
from maildoctor.links.paths import links_from_config
from maildoctor.resolver import Resolver, printable
from maildoctor.resolver.names import is_documentation_name
from maildoctor.smtp.report import StageResult, StageStatus

REQUEST_TIMEOUT = 3.0
STAGE_BUDGET = 8.0


def run_links_stage(config: Mapping[str, Any], *, resolver: Resolver | None,
                    ca_file: str | None = None, timeout: float = REQUEST_TIMEOUT) -> StageResult:
    started = time.monotonic()
    links = links_from_config(config)
    if not links:
        return StageResult("links", StageStatus.SKIPPED, 0.0, {},
                           "not run: neither public_baseurl nor server_name is set")
    host = urlsplit(links[0].url).hostname or ""
    if is_documentation_name(host):
        return StageResult("links", StageStatus.SKIPPED, 0.0, {"host": printable(host)},
                           f"not run: {printable(host)} is a documentation domain (RFC 2606)")
    verdicts: list[LinkVerdict] = []
    for link in links:
        left = started + STAGE_BUDGET - time.monotonic()
        if left <= 0.1:
            break
        got = fetch(link.url, timeout=min(timeout, left), resolver=resolver, ca_file=ca_file)
        verdicts.append(judge_link(link, got))
    broken = [v for v in verdicts if not v.works]
    facts = {"links": [v.as_dict() for v in verdicts], "checked": len(verdicts),
             "of": len(links)}
    seconds = time.monotonic() - started
    if broken:
        prefixes = sorted({v.link.prefix or v.link.key for v in broken})
        return StageResult("links", StageStatus.FAIL, seconds, facts,
                           f"{len(broken)} of {len(verdicts)} dead: "
                           f"{', '.join(prefixes)} not reaching Synapse")
    status = StageStatus.OK if len(verdicts) == len(links) else StageStatus.WARN
    return StageResult("links", status, seconds, facts,
                       f"{len(verdicts)} links answered by Synapse through {printable(host)}")
