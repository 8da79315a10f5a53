"""Small interactive figures that read offline: inline SVG plus one short script, no CDN.

Why self-written: plotly would add megabytes of JavaScript per page; these need only a
tooltip. Every figure is an HTML string (display it with ``IPython.display.HTML``): points
and cells carry their text in ``data-tip`` attributes, and one script (defined once per
page, guarded) shows it beside the pointer. RDM cells show the two images they compare.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from typing import Sequence

import numpy as np
import pandas as pd

from lib.plots.style import PUBLISHED_STYLE, REFERENCE_COLOURS

MAX_RDM_IMAGES = 48  # beyond this the SVG grows past what a page should carry

_TOOLTIP_JS = """
<script>
(function () {
  if (window.bookTip) return;
  var tip = document.createElement('div');
  tip.className = 'book-tip';
  tip.style.cssText = 'position:fixed;z-index:1000;display:none;pointer-events:none;background:#fff;' +
    'border:1px solid #888;border-radius:4px;padding:4px 6px;font:12px/1.35 sans-serif;' +
    'box-shadow:0 1px 4px rgba(0,0,0,.25);max-width:340px;white-space:pre-line';
  document.addEventListener('DOMContentLoaded', function () { document.body.appendChild(tip); });
  if (document.body) document.body.appendChild(tip);
  window.bookTip = {
    show: function (ev, el) {
      var root = el.closest('[data-thumbs]');
      tip.textContent = el.getAttribute('data-tip') || '';
      if (root && el.hasAttribute('data-i')) {
        var thumbs = JSON.parse(root.getAttribute('data-thumbs'));
        var row = document.createElement('div');
        [el.getAttribute('data-i'), el.getAttribute('data-j')].forEach(function (k) {
          var img = document.createElement('img');
          img.src = thumbs[+k]; img.width = 96; img.style.marginRight = '4px';
          row.appendChild(img);
        });
        tip.appendChild(row);
      }
      tip.style.display = 'block';
      window.bookTip.move(ev);
    },
    move: function (ev) {
      var x = ev.clientX + 14, y = ev.clientY + 14;
      if (x + 350 > window.innerWidth) x = ev.clientX - 350;
      tip.style.left = x + 'px'; tip.style.top = y + 'px';
    },
    hide: function () { tip.style.display = 'none'; }
  };
  document.addEventListener('mouseover', function (ev) {
    var el = ev.target.closest && ev.target.closest('[data-tip]');
    if (el) window.bookTip.show(ev, el); else window.bookTip.hide();
  });
  document.addEventListener('mousemove', function (ev) {
    if (ev.target.closest && ev.target.closest('[data-tip]')) window.bookTip.move(ev);
  });
})();
</script>
"""


def folded(content: str, summary: str) -> str:
    """``content`` in a collapsed block, for an interactive view beside a static figure."""
    return (f'<details class="book-interactive-fold"><summary>{html.escape(summary)}</summary>'
            f"{content}</details>")


def _fmt(x: float, digits: int = 3) -> str:
    from lib.tables import fmt_number

    return fmt_number(x, digits)


def depth_profiles_html(table: pd.DataFrame, reference: str, alpha: float = 0.05, show_published: bool = True,
                        width: int = 330, height: int = 210) -> str:
    """Per model, a small SVG of RSA with ``reference`` through relative depth; hovering a
    layer shows its name, depth, ρ, 95 % CI and q. The published curve is drawn dashed."""
    from lib.plots.rsa import _label, published_curve

    t = table[table["reference"] == reference]
    models = list(dict.fromkeys(t["model"]))
    colour = REFERENCE_COLOURS.get(reference, "#333")
    pads = (44, 10, 22, 34)  # left, right, top, bottom
    panels = []
    for m in models:
        g = t[t["model"] == m].sort_values("depth")
        pub_name, pub = (published_curve(m, reference, g["arch"].iloc[0] if "arch" in g else None,
                                         g["training"].iloc[0] if "training" in g else None)
                         if show_published else (None, pd.DataFrame()))
        values = np.concatenate([g[["rho", "ci_low", "ci_high"]].to_numpy(float).ravel(),
                                 pub["rsa"].to_numpy(float) if len(pub) else np.array([])])
        values = values[np.isfinite(values)]
        lo, hi = (min(values.min(), 0.0), max(values.max(), 0.0)) if len(values) else (-1.0, 1.0)
        span = (hi - lo) or 1.0
        lo, hi = lo - 0.05 * span, hi + 0.05 * span

        def sx(v):
            return pads[0] + float(v) * (width - pads[0] - pads[1])

        def sy(v):
            return pads[2] + (hi - float(v)) / (hi - lo) * (height - pads[2] - pads[3])

        parts = [f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12">{html.escape(_label(t, m))}</text>',
                 f'<line x1="{pads[0]}" x2="{width - pads[1]}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="#999"/>',
                 f'<line x1="{pads[0]}" x2="{pads[0]}" y1="{pads[2]}" y2="{height - pads[3]}" stroke="#333"/>',
                 f'<line x1="{pads[0]}" x2="{width - pads[1]}" y1="{height - pads[3]}" y2="{height - pads[3]}" '
                 f'stroke="#333"/>']
        for v in (lo + 0.05 * span, 0.0, hi - 0.05 * span):
            parts.append(f'<text x="{pads[0] - 4}" y="{sy(v) + 4:.1f}" text-anchor="end" font-size="11">'
                         f'{_fmt(v, 2)}</text>')
        for v in (0, 0.5, 1):
            parts.append(f'<text x="{sx(v):.1f}" y="{height - pads[3] + 14}" text-anchor="middle" '
                         f'font-size="11">{v:g}</text>')
        parts.append(f'<text x="{(pads[0] + width - pads[1]) / 2}" y="{height - 4}" text-anchor="middle" '
                     f'font-size="11">relative depth</text>')
        ok = g.dropna(subset=["ci_low", "ci_high"])
        if len(ok):
            band = [f"{sx(d):.1f},{sy(v):.1f}" for d, v in zip(ok["rel_depth"], ok["ci_high"])]
            band += [f"{sx(d):.1f},{sy(v):.1f}" for d, v in zip(ok["rel_depth"][::-1], ok["ci_low"][::-1])]
            parts.append(f'<polygon points="{" ".join(band)}" fill="{colour}" fill-opacity="0.18" stroke="none"/>')
        if len(pub):
            pts = " ".join(f"{sx(d):.1f},{sy(v):.1f}" for d, v in zip(pub["rel_depth"], pub["rsa"]) if np.isfinite(v))
            parts.append(f'<polyline points="{pts}" fill="none" stroke="#262626" stroke-dasharray="4 3" '
                         f'stroke-width="{PUBLISHED_STYLE["lw"]}"/>')
        line = g.dropna(subset=["rho"])
        pts = " ".join(f"{sx(d):.1f},{sy(v):.1f}" for d, v in zip(line["rel_depth"], line["rho"]))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.4"/>')
        for _, r in line.iterrows():
            sig = r["q"] < alpha if np.isfinite(r["q"]) else False
            tip = (f"{m} · {r['layer']}\nrelative depth {r['rel_depth']:.2f} (block {r['block']})\n"
                   f"ρ = {_fmt(r['rho'])}, 95 % CI [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]\n"
                   f"q = {_fmt(r['q'], 2)}{' (significant)' if sig else ''}")
            parts.append(f'<circle cx="{sx(r["rel_depth"]):.1f}" cy="{sy(r["rho"]):.1f}" r="{3.2 if sig else 2.4}" '
                         f'fill="{colour if sig else "#fff"}" stroke="{colour}" data-tip="{html.escape(tip)}"/>')
        if pub_name:
            parts.append(f'<text x="{width - pads[1]}" y="{pads[2] + 10}" text-anchor="end" font-size="10" '
                         f'fill="#262626">- - published: {html.escape(pub_name)}</text>')
        panels.append(f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
                      f'aria-label="{html.escape(reference)} RSA of {html.escape(m)} by depth">{"".join(parts)}</svg>')
    legend = (f'<p style="font-size:0.85em;margin:0.2em 0">Hover a layer for its name and values. Line and band: this '
              f'run (95 % CI); filled dots: q &lt; {alpha}; dashed: published (pretrained, original stimuli).</p>')
    return f'<div class="book-interactive">{"".join(panels)}{legend}</div>{_TOOLTIP_JS}'


def _thumbnail(image: np.ndarray, size: int = 96) -> str:
    from PIL import Image

    im = Image.fromarray(np.asarray(image).astype(np.uint8))
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def rdm_html(rdms: dict[str, np.ndarray], ids: Sequence[str], images: Sequence[np.ndarray], cell: int = 11,
             unit: str = "cosine distance") -> str:
    """RDMs side by side as SVG heatmaps (viridis, by rank within each RDM); hovering a cell
    shows the two images it compares, their ids and the dissimilarity. At most
    ``MAX_RDM_IMAGES`` images (the first ones) to keep the page light."""
    import matplotlib

    n = min(len(ids), MAX_RDM_IMAGES)
    cmap = matplotlib.colormaps["viridis"]
    thumbs = [_thumbnail(images[i]) for i in range(n)]
    panels = []
    for name, mat in rdms.items():
        mat = np.asarray(mat, dtype=float)[:n, :n]
        off = mat[np.triu_indices(n, 1)]
        ranks = pd.Series(off).rank(pct=True).to_numpy()
        rank_mat = np.zeros_like(mat)
        rank_mat[np.triu_indices(n, 1)] = ranks
        rank_mat = rank_mat + rank_mat.T
        size = n * cell
        rects = []
        for i in range(n):
            for j in range(n):
                rgb = matplotlib.colors.to_hex(cmap(rank_mat[i, j])) if i != j else "#440154"
                tip = f"{ids[i]} vs {ids[j]}\n{name}: {_fmt(mat[i, j])} ({unit}; rank {rank_mat[i, j]:.2f})"
                rects.append(f'<rect x="{j * cell}" y="{i * cell}" width="{cell}" height="{cell}" fill="{rgb}" '
                             f'data-i="{i}" data-j="{j}" data-tip="{html.escape(tip)}"/>')
        panels.append(f'<figure style="display:inline-block;margin:0 12px 0 0"><svg viewBox="0 0 {size} {size}" '
                      f'width="260" height="260" role="img" aria-label="{html.escape(name)}">'
                      f'{"".join(rects)}</svg><figcaption style="text-align:center;font-size:0.9em">'
                      f'{html.escape(name)}</figcaption></figure>')
    note = "" if n == len(ids) else f" (the first {n} of {len(ids)} images)"
    return (f'<div class="book-interactive" data-thumbs="{html.escape(json.dumps(thumbs))}" '
            f'id="rdm-{uuid.uuid4().hex[:8]}">{"".join(panels)}<p style="font-size:0.85em;margin:0.2em 0">'
            f'Hover a cell to see the two images it compares{note}; colour: dissimilarity rank within each RDM '
            f'(dark = similar, yellow = dissimilar).</p></div>{_TOOLTIP_JS}')
