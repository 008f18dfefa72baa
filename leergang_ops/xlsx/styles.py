"""styles.xml: new fonts, fills, number formats and cellXfs appended, never renumbered."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from leergang_ops.xlsx.cells import DATE_FORMAT, DATETIME_FORMAT, CellStyle, escape, unescape
from leergang_ops.xlsx.errors import DamagedWorkbook, Unsupported
from leergang_ops.xlsx.tags import _parse_attrs

log = logging.getLogger(__name__)


_BUILTIN_FORMATS = {"General": 0, "0": 1, "0.00": 2, "#,##0": 3, "#,##0.00": 4, "0%": 9,
                    "0.00%": 10, "0.00E+00": 11, "@": 49}
_BUILTIN_DATE_FORMATS = {*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)}
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')
_ARGB = re.compile(r"[0-9A-Fa-f]{8}")


def _argb(color: str) -> str:
    """An ARGB colour as Excel writes it; a 6-digit RGB gets an opaque alpha."""
    color = color.lstrip("#")
    if len(color) == 6:
        color = "FF" + color
    if not _ARGB.fullmatch(color):
        raise ValueError(f"not an ARGB colour: {color!r}")
    return color.upper()


def _looks_like_date(code: str) -> bool:
    return bool(re.search(r"[dmyhs]", _FORMAT_LITERALS.sub("", code), re.I))


@dataclass
class _Section:
    """One list in styles.xml (<fonts>, <fills>, <cellXfs>, <numFmts>) and what is appended."""

    start: int  # where the section element starts in the text (-1: absent)
    end: int
    open_tag: str
    items: list[str]
    added: list[str] = field(default_factory=list)

    def index_of(self, xml: str) -> int:
        """The index of an identical item, appending it when there is none."""
        for i, item in enumerate(self.items + self.added):
            if item == xml:
                return i
        self.added.append(xml)
        return len(self.items) + len(self.added) - 1


class _Styles:
    """styles.xml as text: fonts, fills, numFmts and cellXfs are appended to, never renumbered."""

    def __init__(self, data: bytes) -> None:
        self.text = data.decode("utf-8")
        root = re.search(r"<([A-Za-z_][\w.-]*:)?styleSheet\b[^>]*>", self.text)
        if root is None:
            raise DamagedWorkbook("De stijlen van de werkmap (styles.xml) zijn onleesbaar.")
        self.root_end = root.end()
        self.p = root.group(1) or ""
        self.sections = {name: self._section(name, child) for name, child in
                         (("numFmts", "numFmt"), ("fonts", "font"), ("fills", "fill"),
                          ("cellXfs", "xf"))}
        self.xf_keys: dict[tuple[frozenset[tuple[str, str]], str], int] = {}
        self.cache: dict[tuple[int, CellStyle | None, str | None], int] = {}

    def _section(self, name: str, child: str) -> _Section:
        p = re.escape(self.p)
        match = re.search(rf"<{p}{name}\b[^>]*?(?:/>|>(.*?)</{p}{name}>)", self.text, re.S)
        if match is None:
            return _Section(-1, -1, "", [])
        items = re.findall(rf"<{p}{child}\b[^>]*?(?:/>|>.*?</{p}{child}>)", match.group(1) or "",
                           re.S)
        open_tag = re.match(rf"<{p}{name}\b[^>]*>", match.group(0))
        assert open_tag is not None
        return _Section(match.start(), match.end(), open_tag.group(0), items)

    @property
    def changed(self) -> bool:
        return any(section.added for section in self.sections.values())

    def xf_for(self, base: int, style: CellStyle | None, kind: str | None) -> int:
        """The cellXfs index for `base` changed by `style`; a date gets a date format."""
        key = (base, style, kind)
        if key not in self.cache:
            self.cache[key] = self._derive(base, style or CellStyle(), kind)
        return self.cache[key]

    def _derive(self, base: int, style: CellStyle, kind: str | None) -> int:
        xfs = self.sections["cellXfs"]
        if not xfs.items:
            log.warning("styles.xml heeft geen cellXfs; celopmaak wordt niet toegepast")
            return base
        base = base if 0 <= base < len(xfs.items) else 0
        start, inner, end = _split_element(xfs.items[base])
        attrs = dict(_parse_attrs(start))
        new = dict(attrs)
        number_format = style.number_format
        if number_format is None and kind and not self._is_date(attrs.get("numFmtId", "0")):
            number_format = DATETIME_FORMAT if kind == "datetime" else DATE_FORMAT
        if number_format is not None:
            new["numFmtId"] = str(self._num_fmt(number_format))
            new["applyNumberFormat"] = "1"
        if style.bold or style.font_color:
            new["fontId"] = str(self._font(int(attrs.get("fontId", "0")), style))
            new["applyFont"] = "1"
        if style.fill:
            new["fillId"] = str(self._fill(style.fill))
            new["applyFill"] = "1"
        if new == attrs:
            return base
        return self._xf(new, inner, start, end)

    def _xf(self, attrs: dict[str, str], inner: str, start: str, end: str) -> int:
        """The index of an identical <xf>, appending one when there is none."""
        xfs = self.sections["cellXfs"]
        if not self.xf_keys:
            for i, item in enumerate(xfs.items):
                s, body, _ = _split_element(item)
                self.xf_keys.setdefault((frozenset(_parse_attrs(s)), body.strip()), i)
        key = (frozenset(attrs.items()), inner.strip())
        if key not in self.xf_keys:
            name = re.match(r"<([\w:.-]+)", start)
            assert name is not None
            text = "".join(f' {k}="{v}"' for k, v in attrs.items())
            xml = (f"<{name.group(1)}{text}>{inner}{end}" if inner
                   else f"<{name.group(1)}{text}/>")
            xfs.added.append(xml)
            self.xf_keys[key] = len(xfs.items) + len(xfs.added) - 1
        return self.xf_keys[key]

    def _is_date(self, num_fmt_id: str) -> bool:
        ident = int(num_fmt_id) if num_fmt_id.isdigit() else 0
        if ident in _BUILTIN_DATE_FORMATS:
            return True
        code = self._custom_formats().get(ident)
        return code is not None and _looks_like_date(code)

    def _custom_formats(self) -> dict[int, str]:
        section = self.sections["numFmts"]
        formats: dict[int, str] = {}
        for item in section.items + section.added:
            attrs = dict(_parse_attrs(item))
            if attrs.get("numFmtId", "").isdigit():
                formats[int(attrs["numFmtId"])] = unescape(attrs.get("formatCode", ""),
                                                           {"&quot;": '"', "&apos;": "'"})
        return formats

    def _num_fmt(self, code: str) -> int:
        if code in _BUILTIN_FORMATS:
            return _BUILTIN_FORMATS[code]
        formats = self._custom_formats()
        for ident, existing in formats.items():
            if existing == code:
                return ident
        ident = max([163, *formats]) + 1
        quoted = escape(code, {'"': "&quot;"})
        self.sections["numFmts"].added.append(
            f'<{self.p}numFmt numFmtId="{ident}" formatCode="{quoted}"/>')
        return ident

    def _font(self, base: int, style: CellStyle) -> int:
        fonts = self.sections["fonts"]
        p = re.escape(self.p)
        source = fonts.items[base] if 0 <= base < len(fonts.items) else f"<{self.p}font/>"
        start, inner, end = _split_element(source)
        end = end or f"</{self.p}font>"
        if style.bold:
            inner = f"<{self.p}b/>" + re.sub(rf"<{p}b\b[^>]*/>", "", inner)
        if style.font_color:
            inner = re.sub(rf"<{p}color\b[^>]*?(?:/>|>.*?</{p}color>)", "", inner, flags=re.S)
            at = re.search(rf"<{p}(?:name|family|charset|scheme)\b", inner)
            pos = at.start() if at else len(inner)
            inner = (f'{inner[:pos]}<{self.p}color rgb="{_argb(style.font_color)}"/>'
                     f"{inner[pos:]}")
        return fonts.index_of(start + inner + end)

    def _fill(self, color: str) -> int:
        p = self.p
        xml = (f'<{p}fill><{p}patternFill patternType="solid"><{p}fgColor rgb="{_argb(color)}"/>'
               f'<{p}bgColor indexed="64"/></{p}patternFill></{p}fill>')
        return self.sections["fills"].index_of(xml)

    def render(self) -> bytes:
        """styles.xml with the appended entries and bumped counts; other bytes untouched."""
        text = self.text
        edits: list[tuple[int, int, str]] = []
        for name, section in self.sections.items():
            if not section.added:
                continue
            count = len(section.items) + len(section.added)
            if section.start < 0:
                if name != "numFmts":
                    raise Unsupported(f"styles.xml mist <{name}>; stijlen kunnen niet worden "
                                     f"toegevoegd.")
                xml = (f'<{self.p}numFmts count="{count}">{"".join(section.added)}'
                       f"</{self.p}numFmts>")
                edits.append((self.root_end, self.root_end, xml))
                continue
            old = text[section.start: section.end]
            open_tag = section.open_tag
            if open_tag.endswith("/>"):
                open_tag = open_tag[:-2].rstrip() + ">"
                body = ""
            else:
                body = old[len(open_tag): old.rindex("</")]
            if re.search(r"\scount\s*=", open_tag):
                open_tag = re.sub(r"(\scount\s*=\s*)([\"'])\d*\2", rf'\g<1>"{count}"', open_tag)
            xml = f"{open_tag}{body}{''.join(section.added)}</{self.p}{name}>"
            edits.append((section.start, section.end, xml))
        for start, end, xml in sorted(edits, reverse=True):
            text = text[:start] + xml + text[end:]
        return text.encode("utf-8")


def _split_element(xml: str) -> tuple[str, str, str]:
    """'<a x="1"><b/></a>' → ('<a x="1">', '<b/>', '</a>'); a self-closing one has no end."""
    match = re.match(r"<[^>]*?(/?)>", xml)
    assert match is not None
    if match.group(1):
        return match.group(0)[:-2].rstrip() + ">", "", ""
    close = xml.rindex("</")
    return match.group(0), xml[match.end(): close], xml[close:]


