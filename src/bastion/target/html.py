"""Parse a response page into an element tree, safely: hostile nesting, control characters, huge pages."""

from __future__ import annotations

import re
from typing import Any

import html5lib

try:
    import lxml.html as _lxml_html
except ImportError:  # html5lib is the pure-Python fallback (slow on deeply nested markup)
    _lxml_html = None

# Parse at most this much of a page (the client already caps the body; html5lib is pure Python).
MAX_PARSE_CHARS = 1_000_000
_CONTROL_CHARS = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])


def parse_html(text: str) -> Any:
    """Element tree of a page: lxml (libxml2, linear even on hostile nesting), else html5lib.

    For links and forms. Checks that must judge what a browser would execute (XSS) parse with
    html5lib themselves, which follows the HTML5 algorithm exactly.
    """
    text = text[:MAX_PARSE_CHARS].translate(_CONTROL_CHARS)
    if _lxml_html is None:
        return html5lib.parse(text, treebuilder="etree", namespaceHTMLElements=False)
    # A string with an XML encoding declaration is refused by lxml; the text is already decoded.
    text = re.sub(r"^\s*<\?xml[^>]*>", "", text)
    if not text.strip():
        return _lxml_html.document_fromstring("<html></html>")
    return _lxml_html.document_fromstring(text)
