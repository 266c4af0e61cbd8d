"""Configs with several mistakes at once, for the property tests of ``maildoctor fix``.

Each line of the ``email:`` block is drawn from what admins really write, right or wrong
(a quoted boolean, a typo in a key, a password cut at `` #``, ``notif_from`` without angle
brackets, a URL without scheme, a key at the top level...), so fixes meet each other:
one fix's result can be another rule's error, which ``fix`` must never write.
"""

from __future__ import annotations

from hypothesis import strategies as st

ABSENT = None

CHOICES: dict[str, list[str | None]] = {
    "smtp_host": ["smtp.example.net", "localhost", "smtp.example.net:587"],
    "smtp_port": [ABSENT, "587", "465", '"587"', "25"],
    "smtp_user": [ABSENT, "synapse@example.org", '""'],
    "password_key": ["smtp_pass", "smpt_pass", "smtp_password"],
    "password": [ABSENT, "'a-long-app-password'", "12345678901", "s3cret #with comment",
                 '"back\\\\slash-password"'],
    "enable_tls": [ABSENT, "false", '"false"', "true", '"true"', "no"],
    "force_tls": [ABSENT, "true", '"true"', "false"],
    "require_transport_security": [ABSENT, "true", "false", '"false"'],
    "notif_from": [ABSENT, '"Matrix <noreply@example.org>"', '"Matrix noreply@example.org"',
                   '"%(app)s <noreply@example.org>"'],
    "client_base_url": [ABSENT, "app.element.io", "https://app.element.io"],
    "riot_base_url": [ABSENT, "https://app.element.io"],
}
#: Keys that may be written at the top level instead of under email: (a common slip).
MOVABLE = ("smtp_user", "require_transport_security", "notif_from")


@st.composite
def broken_configs(draw: st.DrawFn) -> str:
    """The text of a homeserver.yaml with an ``email:`` block of drawn lines."""
    picks = {key: draw(st.sampled_from(values)) for key, values in CHOICES.items()}
    outside = draw(st.sampled_from([None, *MOVABLE]))
    lines = ["server_name: example.org"]
    if draw(st.booleans()):
        lines.append("public_baseurl: https://matrix.example.org/")
    lines.append("email:")
    top: list[str] = []
    for key, value in picks.items():
        if key == "password_key" or value is None:
            continue
        name = picks["password_key"] if key == "password" else key
        line = f"{name}: {value}"
        (top if key == outside else lines).append(line if key == outside else "  " + line)
    lines += top
    return "\n".join(lines) + "\n"
