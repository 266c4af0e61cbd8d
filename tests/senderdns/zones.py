"""The test zone Knot serves: one sender domain per case, under ``maildoctor.test``, so a
name that is not listed (``gone.maildoctor.test``) is a real NXDOMAIN from the server
authoritative for its parent. 192.0.2.25 (TEST-NET-1) plays the public address the mail
leaves from (``--sending-ip``); 198.51.100.0/24 is someone else's."""

ORIGIN = "maildoctor.test"
SENDING_IP = "192.0.2.25"

LIMIT_INCLUDES = " ".join(f"include:l{i}.{ORIGIN}" for i in range(1, 12))

BODY = f"""\
mail A {SENDING_IP}
smtp A 127.0.0.1
; a good domain: SPF covers the sender, DMARC reject, all aligned
good MX 10 mail
good TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.good TXT "v=DMARC1; p=reject; adkim=r; aspf=r"
; no SPF at all
nospf MX 10 mail
_dmarc.nospf TXT "v=DMARC1; p=none"
; no DMARC
nodmarc MX 10 mail
nodmarc TXT "v=spf1 ip4:192.0.2.0/24 -all"
; two SPF records
twospf MX 10 mail
twospf TXT "v=spf1 ip4:192.0.2.0/24 -all"
twospf TXT "v=spf1 mx -all"
_dmarc.twospf TXT "v=DMARC1; p=none"
; over the 10-lookup limit
limit MX 10 mail
limit TXT "v=spf1 {LIMIT_INCLUDES} -all"
_dmarc.limit TXT "v=DMARC1; p=none"
""" + "".join(f'l{i} TXT "v=spf1 ip4:203.0.113.{i}/32 -all"\n' for i in range(1, 12)) + """\
; -all that excludes the server, under DMARC reject
exclude MX 10 mail
exclude TXT "v=spf1 ip4:198.51.100.0/24 -all"
_dmarc.exclude TXT "v=DMARC1; p=reject"
; DMARC reject and nothing aligned (SPF only softfails)
reject MX 10 mail
reject TXT "v=spf1 ip4:198.51.100.0/24 ~all"
_dmarc.reject TXT "v=DMARC1; p=reject"
; a provider's include and its DKIM selector (Google Workspace)
viagoogle MX 10 mail
viagoogle TXT "v=spf1 include:_spf.google.com -all"
_dmarc.viagoogle TXT "v=DMARC1; p=quarantine"
google._domainkey.viagoogle TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC5"
; the provider's include reached through an include of our own
nested MX 10 mail
nested TXT "v=spf1 include:inc.maildoctor.test -all"
inc TXT "v=spf1 ip4:198.51.100.7 include:_spf.google.com ~all"
_dmarc.nested TXT "v=DMARC1; p=none"
google._domainkey.nested CNAME google.dkim.elsewhere.example.
; the provider's include missing, and no DKIM for its selector
nogoogle MX 10 mail
nogoogle TXT "v=spf1 ip4:198.51.100.0/24 -all"
_dmarc.nogoogle TXT "v=DMARC1; p=none"
; a TXT record split over several strings (one value once joined)
split MX 10 mail
split TXT "v=spf1 ip4:192.0.2.0/24" " -all"
_dmarc.split TXT "v=DMARC1;" " p=none"
; non-ASCII bytes in the SPF record
nonascii MX 10 mail
nonascii TXT "v=spf1 ip4:192.0.2.0/24 caf\\195\\169 -all"
_dmarc.nonascii TXT "v=DMARC1; p=none"
; more than two lookups that find nothing (void lookups)
void MX 10 mail
void TXT "v=spf1 a:nx1.maildoctor.test a:nx2.maildoctor.test a:nx3.maildoctor.test" \
" ip4:192.0.2.0/24 -all"
_dmarc.void TXT "v=DMARC1; p=none"
; a provider whose DKIM records are CNAMEs to its own domain (SendGrid)
viasendgrid MX 10 mail
viasendgrid TXT "v=spf1 include:sendgrid.net ~all"
_dmarc.viasendgrid TXT "v=DMARC1; p=reject"
s1._domainkey.viasendgrid CNAME s1.domainkey.u1.wl1.sendgrid.net.
s2._domainkey.viasendgrid CNAME s2.domainkey.u1.wl1.sendgrid.net.
; no MX and no address
nomx TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.nomx TXT "v=DMARC1; p=none"
"""

ZONES = {ORIGIN: BODY}
