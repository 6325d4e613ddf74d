"""Device comparison reports (installed as `hwnas.report`): data, figures, HTML/Markdown rendering.

`hwnas report` and `hwnas.report(...)` call `render.render_report`.
"""
