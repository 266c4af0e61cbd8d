"""Renderers for ``check`` results, chosen by ``--format``. Each module has
``render(result, stream, *, color=None)``; they are imported only when used."""

FORMATS = {"text": "maildoctor.render.text", "json": "maildoctor.render.json",
           "github": "maildoctor.render.github", "sarif": "maildoctor.render.sarif"}
