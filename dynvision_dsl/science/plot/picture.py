"""What every picture of a model shares: an off-screen matplotlib figure saved
deterministically as SVG (with `<title>` tooltips on the artists whose gid is
in the figure's tip table), PNG, PDF or a self-contained interactive HTML
page; atomic files; `_repr_svg_` for notebooks."""
from __future__ import annotations

import html
import io
import os
import re
from pathlib import Path

from ...util.files import write_atomic_bytes

FORMATS = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".pdf": "pdf", ".html": "html"}


def _metadata(fmt: str) -> dict:
    """No dates or software versions, so equal graphs give equal files."""
    return {"svg": {"Date": None, "Creator": None}, "png": {"Software": None},
            "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}.get(fmt, {})


def file_format(path) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot draw to '{Path(path).name}': use a .svg, .png, .pdf, .html or .dot file")
    return fmt


class Picture:
    """A figure with tooltips; subclasses set `title`, `width`, `height` (inches)
    and `figure()` -> (matplotlib Figure, {gid: tooltip})."""

    title = "model"
    width = height = 1.0

    def __init__(self):
        self._svg: str | None = None

    def figure(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _save(self, fmt: str, dpi: float) -> tuple[bytes, dict]:
        import matplotlib

        with matplotlib.rc_context({"svg.hashsalt": "dynvision-dsl", "svg.fonttype": "path",
                                 "text.parse_math": False}):  # user text: a "$" is not mathtext
            fig, tips = self.figure()
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=dpi, facecolor="white", metadata=_metadata(fmt))
        return buf.getvalue(), tips

    def svg(self) -> str:
        """SVG text with a `<title>` tooltip on every box, edge and label."""
        if self._svg is None:
            data, tips = self._save("svg", 72)

            def add_title(m: re.Match) -> str:
                tip = tips.get(m.group(1))
                return m.group(0) + (f"\n   <title>{html.escape(tip, quote=False)}</title>" if tip else "")
            self._svg = re.sub(r'<g id="(dv[a-z]+\d+(?:t\d+)?)">', add_title, data.decode("utf-8"))
        return self._svg

    def _repr_svg_(self) -> str:
        return self.svg()

    def size_px(self, dpi: float = 150) -> tuple[int, int]:
        """The size of the PNG at `dpi`."""
        return round(self.width * dpi), round(self.height * dpi)

    def data(self, fmt: str, dpi: float = 150) -> bytes:
        """The file contents in one of svg, png, pdf, html."""
        if fmt == "svg":
            return self.svg().encode("utf-8")
        if fmt == "html":
            return svg_to_html(self.svg(), self.title).encode("utf-8")
        if fmt == "dot":
            raise ValueError("only the connectivity graph has a .dot form; use .svg, .png, .pdf or .html")
        return self._save(fmt, dpi)[0]

    def save(self, path: str | os.PathLike, dpi: float = 150, overwrite: bool = True) -> Path:
        """Write the picture in the format its suffix names."""
        return write_atomic_bytes(path, self.data(file_format(path), dpi), overwrite)


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
 html, body {{ margin: 0; height: 100%; font: 13px Helvetica, Arial, sans-serif; }}
 #view {{ width: 100%; height: calc(100% - 28px); overflow: hidden; cursor: grab; background: #fff; }}
 #view svg {{ width: 100%; height: 100%; }}
 #bar {{ height: 28px; line-height: 28px; padding: 0 8px; color: #555; border-bottom: 1px solid #ddd; }}
 #tip {{ position: fixed; display: none; max-width: 40em; white-space: pre-wrap; background: #fffff0;
        border: 1px solid #999; padding: 4px 6px; font: 12px monospace; pointer-events: none; }}
</style></head><body>
<div id="bar"><b>{title}</b> &middot; wheel: zoom &middot; drag: pan &middot; double-click: fit
 &middot; hover a box or a label for details</div>
<div id="view">{svg}</div><div id="tip"></div>
<script>
(function () {{
  var svg = document.querySelector('#view svg'), tip = document.getElementById('tip');
  svg.removeAttribute('width'); svg.removeAttribute('height');
  var home = svg.getAttribute('viewBox').split(/\\s+/).map(Number), box = home.slice();
  function show() {{ svg.setAttribute('viewBox', box.join(' ')); }}
  Array.prototype.forEach.call(svg.querySelectorAll('title'), function (t) {{
    t.parentNode.setAttribute('data-tip', t.textContent); t.parentNode.removeChild(t); }});
  svg.addEventListener('wheel', function (e) {{
    e.preventDefault();
    var r = svg.getBoundingClientRect(), s = e.deltaY > 0 ? 1.15 : 1 / 1.15;
    var fx = (e.clientX - r.left) / r.width, fy = (e.clientY - r.top) / r.height;
    var w = box[2] * s, h = box[3] * s;
    box = [box[0] + (box[2] - w) * fx, box[1] + (box[3] - h) * fy, w, h]; show();
  }}, {{passive: false}});
  var drag = null;
  svg.addEventListener('mousedown', function (e) {{ drag = [e.clientX, e.clientY, box[0], box[1]]; }});
  window.addEventListener('mouseup', function () {{ drag = null; }});
  window.addEventListener('mousemove', function (e) {{
    if (drag) {{
      var r = svg.getBoundingClientRect(), k = Math.max(box[2] / r.width, box[3] / r.height);
      box[0] = drag[2] - (e.clientX - drag[0]) * k; box[1] = drag[3] - (e.clientY - drag[1]) * k; show();
    }}
    var el = e.target.closest ? e.target.closest('[data-tip]') : null;
    if (el && !drag) {{
      tip.textContent = el.getAttribute('data-tip'); tip.style.display = 'block';
      tip.style.left = (e.clientX + 14) + 'px'; tip.style.top = (e.clientY + 14) + 'px';
    }} else {{ tip.style.display = 'none'; }}
  }});
  svg.addEventListener('dblclick', function () {{ box = home.slice(); show(); }});
}})();
</script></body></html>
"""


def svg_to_html(svg: str, title: str) -> str:
    """A self-contained page (no network) around the SVG: pan, zoom and the tooltips."""
    body = re.sub(r"<metadata>.*?</metadata>\s*", "", svg[svg.index("<svg"):], count=1, flags=re.S)
    return _HTML.format(title=html.escape(title), svg=body)


