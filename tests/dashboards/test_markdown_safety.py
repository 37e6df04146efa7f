"""User-written FMA metadata reaches the page as text, never as links, images or markup."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from dashboards.views.common import attribution, literal

HOSTILE = [
    "[win a prize](http://evil.example/x)",
    "![](http://evil.example/pixel.png)",
    "<img src=http://evil.example/p.png>",
    "**loud** _sly_ `code` ~~gone~~",
    ":red[alarm] :material/warning: $x^2$",
    "Title\n# heading\n- item",
    "ends with a backslash \\",
]


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("strikethrough").render(markdown)


@pytest.mark.parametrize("text", HOSTILE)
def test_literal_text_renders_as_itself(text):
    html = rendered(literal(text))
    assert "<a " not in html and "<img" not in html and "<strong>" not in html and "<em>" not in html
    assert "<code>" not in html and "<h1>" not in html and "<li>" not in html and "<s>" not in html
    # CommonMark un-escapes every backslash-escaped character: the reader sees the text itself.
    visible = html.removeprefix("<p>").removesuffix("</p>\n").replace("&lt;", "<").replace("&gt;", ">")
    assert visible.replace("&quot;", '"') == " ".join(text.split())


def test_attribution_escapes_every_metadata_field():
    track = {"title": HOSTILE[0], "artist_name": HOSTILE[1], "album_title": HOSTILE[2],
             "top_genre_title": "Rock", "license": "[CC](http://evil.example)", "synthetic": False}
    html = rendered(attribution(track))
    assert "<a " not in html and "<img" not in html
    assert html.count("<strong>") == 1 and html.count("<em>") == 1  # only our own bold title and italic album
