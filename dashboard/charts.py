"""Small charts drawn on the server as inline SVG: no CDN, no JavaScript, readable in light and dark mode.

Colours come from CSS classes (dashboard.css), so the charts follow the admin's theme.
"""

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

BAR_WIDTH = 2
GAP = 0
HEIGHT = 28


def _tone(rate: float | None, threshold: float) -> str:
    if rate is None:
        return "none"
    if rate > threshold:
        return "bad"
    if rate > threshold / 4:
        return "warn"
    return "ok"


def sparkline(series, *, threshold: float, label: str) -> SafeString:
    """Error rate per bucket as bars (0-100%), a dashed line at the outage threshold, grey ticks for no calls.

    `series` is a list of objects with .calls, .errors and .rate; `label` is the text a screen reader reads.
    """
    n = len(series)
    width = n * (BAR_WIDTH + GAP)
    bars = []
    for i, bucket in enumerate(series):
        x = i * (BAR_WIDTH + GAP)
        rate = bucket.rate
        if rate is None:
            bars.append((x, HEIGHT - 1, 1, "none", "no calls"))
            continue
        # Always at least 2 px so a healthy bucket shows as a green baseline, not as "no data".
        h = max(2, round(rate * (HEIGHT - 2)))
        bars.append((x, HEIGHT - h, h, _tone(rate, threshold), f"{bucket.errors}/{bucket.calls} failed"))
    # Numbers and fixed class names only: built as one string (format_html per bar is the page's slowest part).
    rects = mark_safe(
        "".join(
            f'<rect x="{x}" y="{y}" width="{BAR_WIDTH}" height="{h}" class="dash-spark-{tone}"><title>{title}</title></rect>'
            for x, y, h, tone, title in bars
        )
    )
    ty = HEIGHT - 2 - round(threshold * (HEIGHT - 2))
    return format_html(
        '<svg class="dash-spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
        "<title>{label}</title>{rects}"
        '<line x1="0" x2="{w}" y1="{ty}" y2="{ty}" class="dash-spark-threshold"/></svg>',
        w=width,
        h=HEIGHT,
        label=label,
        rects=rects,
        ty=ty,
    )


def meter(fraction: float | None, *, label: str, width: int = 90, height: int = 10) -> SafeString:
    """A horizontal bar for what is left (rate-limit headroom): red under 10%, amber under 25%."""
    if fraction is None:
        return mark_safe("")
    tone = "bad" if fraction < 0.10 else "warn" if fraction < 0.25 else "ok"
    filled = round(fraction * width)
    return format_html(
        '<svg class="dash-meter" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
        '<title>{label}</title><rect x="0" y="0" width="{w}" height="{h}" rx="2" class="dash-meter-track"/>'
        '<rect x="0" y="0" width="{f}" height="{h}" rx="2" class="dash-meter-{tone}"/></svg>',
        w=width,
        h=height,
        f=filled,
        tone=tone,
        label=label,
    )
