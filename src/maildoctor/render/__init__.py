"""Every output format, apart from the checks that produce what is shown.

``check`` results: :data:`FORMATS` maps each ``--format`` to its module, which has
``render(result, stream, *, color=None)`` and is imported only when chosen.
``probe`` results: :mod:`.probe_text` (the terminal, with live progress) and
:mod:`.probe_json` (``--format json``); both show the config findings the probe settled
(``Diagnosis.settled``) the same way.
"""

FORMATS = {"text": "maildoctor.render.text", "json": "maildoctor.render.json",
           "github": "maildoctor.render.github", "sarif": "maildoctor.render.sarif"}
