"""What the throwaway Postfix + Dovecot (tests/infra/postfix.py) puts on disk in its root
directory ``$R``: the config files and the directory tree, as pure functions of the paths and
ports, so they can be read and tested apart from the processes.

The facts behind them are in spec/postfix-recipe.md. Deviations from it, and why:
- our own master.cf instead of a copy of Debian's, so a locally edited /etc/postfix cannot
  change the tests, with every service unchrooted and no ``smtp inet`` (port 25) line;
- mail goes to one Maildir through the ``virtual`` agent instead of ``discard:``, so tests can
  assert what arrived;
- the CRAM-MD5 trap hashes the password with SSHA512 (computed here) rather than
  ``doveadm pw -s SHA512-CRYPT``: any non-reversible scheme makes CRAM-MD5 unusable;
- Dovecot's escalating per-IP auth penalty is off (see :func:`dovecot_conf`).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

USER = "synapse@example.org"
PASSWORD = "s3cret"  # a fixed test credential of a loopback-only server, not a real secret
HOSTNAME = "mail.test"
# The round trip's mailbox (mailbox mode only): the IMAP login and where every mail lands.
MAILBOX_USER = "alice@example.org"
MAILBOX_PASSWORD = "imap-s3cret"  # a fixed credential of a loopback-only server
LMTP = "lmtp:unix:private/dovecot-lmtp"


@dataclass(frozen=True)
class Mailbox:
    """Mailbox mode: Postfix signs with OpenDKIM (``signer_port``), a second OpenDKIM
    (``verifier_port``) verifies as a receiving server would and writes
    Authentication-Results, asking the test DNS (``dns_port``); Dovecot delivers over LMTP
    with a Sieve rule filing mail from ``junk_domain`` into Junk, and serves IMAPS."""

    imaps_port: int
    signer_port: int
    verifier_port: int
    dns_port: int
    domain: str  # the domain OpenDKIM signs for
    selector: str = "mail"
    junk_domain: str = "junk.maildoctor.test"


def main_cf(root: Path, mailbox: Mailbox | None = None, unknown_domains: bool = False) -> str:
    """``unknown_domains``: only mail.test is this server's own domain, so that
    reject_unknown_sender_domain looks other domains up (Postfix never looks up a domain it
    is final for, and the sink's ``/./`` map makes every domain final otherwise)."""
    transport = LMTP if mailbox else "virtual"
    milters = "" if mailbox is None else (
        f"smtpd_milters = inet:127.0.0.1:{mailbox.signer_port}, "
        f"inet:127.0.0.1:{mailbox.verifier_port}\n"
        "milter_default_action = tempfail\n")
    own = f"virtual_mailbox_domains = {HOSTNAME}\n" if unknown_domains else ""
    return milters + own + f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = {HOSTNAME}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains =
alias_maps =
alias_database =
biff = no
maillog_file = {root}/postfix.log
maillog_file_prefixes = /var, /dev/stdout, {root}
smtpd_tls_chain_files = {root}/certs/server.pem
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
# Every recipient, whatever its domain, lands in one Maildir owned by nobody.
default_transport = {transport}
relay_transport = {transport}
local_transport = {transport}
virtual_transport = {transport}
virtual_mailbox_base = {root}/sink
virtual_mailbox_maps = regexp:{root}/etc/sink.regexp
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
"""


# Our own master.cf (not Debian's, which may be edited locally): only the services needed,
# none chrooted, and no `smtp inet` line, so nothing binds port 25.
MASTER_SERVICES = """\
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
proxywrite unix - - n -  1 proxymap
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
virtual   unix  - n n -  - virtual
lmtp      unix  - - n -  - lmtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def master_cf(host: str, submission_port: int, smtps_port: int, sender_rules_port: int = 0,
              root: Path | None = None, unknown_domains: bool = False) -> str:
    """``sender_rules_port``: a second submission port that enforces who may send as whom
    (``reject_sender_login_mismatch`` over ``etc/sender_logins``) and, with
    ``unknown_domains``, whose domain exists (``reject_unknown_sender_domain``: a DNS lookup,
    so only with the test DNS of ``PostfixServer(nxdomain_dns=True)``); with Postfix's
    default ``smtpd_delay_reject = yes`` both answer RCPT TO, not MAIL FROM."""
    unknown = ",reject_unknown_sender_domain" if unknown_domains else ""
    rules = "" if not sender_rules_port else f"""\
{host}:{sender_rules_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission-rules
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_sender_login_maps=texthash:{root}/etc/sender_logins
  -o smtpd_sender_restrictions=reject_sender_login_mismatch{unknown}
"""
    return MASTER_SERVICES + f"""\
{host}:{submission_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
{host}:{smtps_port} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
""" + rules


def sender_logins() -> str:
    """Who owns which sender address: the test login owns only its own address."""
    return f"{USER} {USER}\n"


def dovecot_conf(root: Path, cram_md5_trap: bool, mailbox: Mailbox | None = None) -> str:
    # The trap stores the password hashed, so CRAM-MD5 (which needs the plaintext) can be
    # advertised but never succeed: Synapse issue 10280.
    mechanisms = "plain login cram-md5" if cram_md5_trap else "plain login"
    scheme = "" if cram_md5_trap else "scheme=PLAIN "
    home = f"{root}/mail/%u" if mailbox else "/nonexistent"
    return (mailbox_dovecot_conf(root, mailbox) if mailbox else "protocols =\n") + f"""\
base_dir = {root}/dv/run
state_dir = {root}/dv/state
log_path = {root}/dv/dovecot.log
auth_mechanisms = {mechanisms}
passdb {{
  driver = passwd-file
  args = {scheme}{root}/dv/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={home}
}}
service auth {{
  unix_listener {root}/queue/private/auth {{
    mode = 0666
  }}
}}
{"" if mailbox else "ssl = no"}
# No escalating per-IP penalty (2, 4, 8... 15 s before every later AUTH, even a good one):
# it would make each test's timing depend on the failures of the tests before it. The
# stock 2 s delay on a failed AUTH stays, as on a real server.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def users_file(cram_md5_trap: bool, mailbox: bool = False) -> str:
    if mailbox:
        return f"{USER}:{{PLAIN}}{PASSWORD}\n{MAILBOX_USER}:{{PLAIN}}{MAILBOX_PASSWORD}\n"
    if not cram_md5_trap:
        return f"{USER}:{{PLAIN}}{PASSWORD}\n"
    salt = os.urandom(8)
    digest = hashlib.sha512(PASSWORD.encode() + salt).digest()
    return f"{USER}:{{SSHA512}}{base64.b64encode(digest + salt).decode()}\n"



# (path under $R, owner, group, mode): Postfix's queue layout from /etc/postfix/postfix-files,
# plus our own directories. The postfix user must traverse $R and own data/ and the queues.
TREE = (
    *((sub, "root", "root", 0o755) for sub in ("etc", "certs", "dv", "queue", "queue/pid")),
    *((f"queue/{q}", "postfix", "postfix", 0o700) for q in (
        "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
        "private", "saved", "trace")),
    ("queue/maildrop", "postfix", "postdrop", 0o730),
    ("queue/public", "postfix", "postdrop", 0o710),
    ("data", "postfix", "postfix", 0o700),
    ("sink", "nobody", "nogroup", 0o700),
)


# --- mailbox mode -------------------------------------------------------------------------


def mailbox_dovecot_conf(root: Path, mailbox: Mailbox) -> str:
    """IMAPS on loopback, LMTP for Postfix, one Maildir per user under $R/mail, a Junk
    folder marked \\Junk, and the Sieve rule run before any user script."""
    return f"""\
protocols = imap lmtp
ssl = yes
ssl_cert = <{root}/certs/cert.pem
ssl_key = <{root}/certs/key.pem
mail_location = maildir:~/Maildir
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
lda_mailbox_autocreate = yes
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Junk {{
    special_use = \\Junk
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {mailbox.imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener {root}/queue/private/dovecot-lmtp {{
    mode = 0666
  }}
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
  postmaster_address = postmaster@{HOSTNAME}
}}
plugin {{
  sieve_before = {root}/sieve/junk.sieve
}}
"""


def junk_sieve(mailbox: Mailbox) -> str:
    return f"""\
require "fileinto";
if address :domain :is "from" "{mailbox.junk_domain}" {{
  fileinto "Junk";
  stop;
}}
"""


def opendkim_conf(root: Path, mailbox: Mailbox, *, verify: bool) -> str:
    """The signer signs what 127.0.0.1 submits for ``domain``; the verifier treats no host as
    internal, so it verifies every mail (as a receiving server) and writes
    Authentication-Results, with its DNS asked of the test server through unbound's stub."""
    name = "verifier" if verify else "signer"
    port = mailbox.verifier_port if verify else mailbox.signer_port
    common = (f"Syslog no\nSocket inet:{port}@127.0.0.1\n"
              f"PidFile {root}/dkim/{name}.pid\nRequireSafeKeys false\n"
              "Canonicalization relaxed/relaxed\n")
    if verify:
        return common + (f"Mode v\nInternalHosts 192.0.2.255\nAuthservID {HOSTNAME}\n"
                         f"ResolverConfiguration {root}/dkim/unbound.conf\n"
                         "AlwaysAddARHeader yes\nQueryCache no\n")
    return common + (f"Mode s\nDomain {mailbox.domain}\nSelector {mailbox.selector}\n"
                     f"KeyFile {root}/dkim/{mailbox.selector}.private\n"
                     "InternalHosts 127.0.0.1\nSignHeaders From,To,Subject,Date,Message-ID\n")


def unbound_conf(mailbox: Mailbox, zone: str) -> str:
    return f"""\
server:
    do-not-query-localhost: no
    module-config: "iterator"
    # unbound answers NXDOMAIN for the RFC 6761 names (.test among them) unless told not to
    local-zone: "test." nodefault
stub-zone:
    name: "{zone}"
    stub-addr: 127.0.0.1@{mailbox.dns_port}
"""
