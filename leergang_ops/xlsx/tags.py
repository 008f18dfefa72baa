"""Attributes of one start tag, read and set in the text (bytes for the sheet, str elsewhere)."""

from __future__ import annotations

import re

_ATTR_CACHE: dict[bytes, re.Pattern[bytes]] = {}


def _attr(tag: bytes, name: bytes) -> bytes | None:
    """The value of attribute `name` in a start tag (bytes), or None."""
    pattern = _ATTR_CACHE.get(name)
    if pattern is None:
        pattern = re.compile(rb"\s" + re.escape(name) + rb"\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
        _ATTR_CACHE[name] = pattern
    match = pattern.search(tag)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def _set_attr(tag: bytes, name: bytes, value: bytes) -> bytes:
    """The start tag with attribute `name` set to `value` (added before the tag's end)."""
    _attr(tag, name)  # compiles the pattern
    pattern = _ATTR_CACHE[name]
    match = pattern.search(tag)
    if match:
        return tag[: match.start()] + b" " + name + b'="' + value + b'"' + tag[match.end():]
    end = len(tag) - (2 if tag.endswith(b"/>") else 1)
    return tag[:end].rstrip() + b" " + name + b'="' + value + b'"' + tag[end:]


_XML_ATTRS = re.compile(r"([\w:.-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def _parse_attrs(tag: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of the element's start tag, in order."""
    head = re.match(r"<[^>]*>", tag)
    text = head.group(0) if head else tag
    return [(m.group(1), m.group(2) if m.group(2) is not None else m.group(3))
            for m in _XML_ATTRS.finditer(text)]


def _set_str_attr(tag: str, name: str, value: str) -> str:
    """The start tag with attribute `name` set to `value` (added before the tag's end)."""
    pattern = re.compile(rf"(\s{name}\s*=\s*)(?:\"[^\"]*\"|'[^']*')")
    if pattern.search(tag):
        return pattern.sub(lambda m: f'{m.group(1)}"{value}"', tag, count=1)
    end = len(tag) - (2 if tag.endswith("/>") else 1)
    return f'{tag[:end].rstrip()} {name}="{value}"{tag[end:]}'
