"""A small positioned XML tree for DMN files (stdlib expat: every element knows its line and column).

Document type declarations are refused, so no entity can expand (no XML bombs, no external entities)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.parsers import expat

from rulesvc.errors import InvalidRulesetError, Location, RulesetError


@dataclass
class Node:
    tag: str  # local name, namespace dropped
    attrs: dict[str, str]
    location: Location
    children: list[Node] = field(default_factory=list)
    text: str = ""
    text_location: Location | None = None

    def all(self, tag: str) -> list[Node]:
        return [child for child in self.children if child.tag == tag]

    def first(self, tag: str) -> Node | None:
        return next((child for child in self.children if child.tag == tag), None)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def child_text(self, tag: str) -> str | None:
        """The text of the `<text>` (or `tag`) child: `<inputEntry><text>…</text></inputEntry>`."""
        child = self.first(tag)
        return None if child is None else child.text


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1].rsplit(":", 1)[-1]


def parse_xml(file: str, text: str) -> Node:
    parser = expat.ParserCreate(namespace_separator=" ")
    stack: list[Node] = []
    root: list[Node] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        node = Node(
            _local(name),
            {_local(k): v for k, v in attrs.items()},
            Location(file, parser.CurrentLineNumber, parser.CurrentColumnNumber + 1),
        )
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack:
            node = stack[-1]
            if node.text_location is None and data.strip():
                offset = len(data) - len(data.lstrip())
                before = data[:offset]
                line = parser.CurrentLineNumber + before.count("\n")
                col = (
                    len(before) - before.rfind("\n")
                    if "\n" in before
                    else parser.CurrentColumnNumber + offset + 1
                )
                node.text_location = Location(file, line, col)
            node.text += data

    def doctype(*_args: object) -> None:
        raise InvalidRulesetError(
            [
                RulesetError(
                    "dmn.doctype",
                    "DMN 文件不能含 <!DOCTYPE ...>（实体定义不被接受）",
                    Location(file, parser.CurrentLineNumber, parser.CurrentColumnNumber + 1),
                )
            ]
        )

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = doctype
    parser.buffer_text = False
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise InvalidRulesetError(
            [
                RulesetError(
                    "dmn.xml_syntax",
                    f"XML 语法错误：{expat.errors.messages.get(exc.code, str(exc)) if exc.code else exc}",
                    Location(file, exc.lineno, exc.offset + 1),
                )
            ]
        ) from None
    if not root:
        raise InvalidRulesetError([RulesetError("dmn.xml_syntax", "空的 XML 文件", Location(file, 1, 1))])
    return root[0]
