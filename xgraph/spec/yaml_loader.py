"""PyYAML's safe loader over libyaml's parser, made lean and bounded for specs.

The composer counts what it builds (depth, values, aliases) so that a hostile document is
refused at the value that goes over a budget, before it costs time or the stack.
"""

from __future__ import annotations

import yaml

from xgraph.budgets import Budgets
from xgraph.errors import Location, SpecError


def mark_location(file: str, mark: yaml.Mark) -> Location:
    """PyYAML's 0-based mark as a 1-based location in `file`."""
    return Location(file, mark.line + 1, mark.column + 1)


def too_deep(budgets: Budgets, location: Location) -> SpecError:
    """The depth budget's error: raised by the composer, and for libyaml's own bound."""
    return budgets.exceeded(
        "yaml_depth", f"the document nests deeper than {budgets.yaml_depth} levels", location
    )


class _Composer(yaml.composer.Composer):
    """PyYAML's composer made lean and counting: it refuses a document that nests too deep
    (before the conversion's recursion would overflow) or holds too many values (before a
    large file costs seconds), at the value that goes over; it notes whether aliases were
    used (without them nothing is shared, and the values counted are all there are), and
    resolves each distinct plain scalar's type once."""

    def __init__(self, file: str, budgets: Budgets) -> None:
        yaml.composer.Composer.__init__(self)
        self.file = file
        self.budgets = budgets
        self.depth = 0
        self.count = 0
        self.aliased = False
        self._plain_tags: dict[str, str] = {}

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        self.depth += 1
        self.count += 1
        try:
            if self.depth > self.budgets.yaml_depth:
                raise too_deep(self.budgets, mark_location(self.file, self.peek_event().start_mark))
            if self.count > self.budgets.yaml_values:
                raise self.budgets.exceeded(
                    "yaml_values",
                    f"the document holds more than {self.budgets.yaml_values:,} values",
                    mark_location(self.file, self.peek_event().start_mark),
                )
            return self._compose(self.peek_event())
        finally:
            self.depth -= 1

    def _compose(self, event: yaml.Event) -> yaml.Node:
        kind = type(event)
        if kind is yaml.AliasEvent:
            self.get_event()
            self.aliased = True
            if event.anchor not in self.anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", event.start_mark
                )
            return self.anchors[event.anchor]
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self.anchors[anchor].start_mark,
                "second occurrence",
                event.start_mark,
            )
        self.get_event()
        node: yaml.Node
        if kind is yaml.ScalarEvent:
            node = yaml.ScalarNode(
                self._scalar_tag(event), event.value, event.start_mark, event.end_mark, event.style
            )
            if anchor is not None:
                self.anchors[anchor] = node
            return node
        if kind is yaml.SequenceStartEvent:
            tag = event.tag if event.tag not in (None, "!") else _SEQ_TAG
            node = yaml.SequenceNode(tag, [], event.start_mark, None, event.flow_style)
            end = yaml.SequenceEndEvent
        else:
            tag = event.tag if event.tag not in (None, "!") else _MAP_TAG
            node = yaml.MappingNode(tag, [], event.start_mark, None, event.flow_style)
            end = yaml.MappingEndEvent
        if anchor is not None:
            self.anchors[anchor] = node
        items = node.value
        while type(self.peek_event()) is not end:
            if end is yaml.SequenceEndEvent:
                items.append(self.compose_node(node, None))
            else:
                items.append((self.compose_node(node, None), self.compose_node(node, None)))
        node.end_mark = self.get_event().end_mark
        return node

    def _scalar_tag(self, event: yaml.ScalarEvent) -> str:
        if event.tag not in (None, "!"):
            return event.tag
        if not event.implicit[0]:
            return self.resolve(yaml.ScalarNode, event.value, event.implicit)
        tag = self._plain_tags.get(event.value)
        if tag is None:
            tag = self._plain_tags[event.value] = self.resolve(
                yaml.ScalarNode, event.value, event.implicit
            )
        return tag


_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"


if yaml.__with_libyaml__:  # libyaml scans and parses ten times faster than pure Python
    from yaml._yaml import CParser as _Parser

    class Loader(_Composer, _Parser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """libyaml's events, composed and constructed by PyYAML's safe Python classes."""

        def __init__(self, text: str, file: str, budgets: Budgets) -> None:
            _Parser.__init__(self, text)
            _Composer.__init__(self, file, budgets)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

else:  # pragma: no cover - PyYAML's wheels include libyaml

    class Loader(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        _Composer,
        yaml.constructor.SafeConstructor,
        yaml.resolver.Resolver,
    ):
        """PyYAML's pure Python reader, scanner and parser: the same results, slower."""

        def __init__(self, text: str, file: str, budgets: Budgets) -> None:
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            _Composer.__init__(self, file, budgets)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)


def check_expansion(root: yaml.Node, file: str, budgets: Budgets) -> None:
    """Refuse alias bombs and self-referring aliases before expanding anything.

    Aliases share nodes, so a few lines can stand for billions of values; sizes are counted
    once per shared node, which takes as long as reading the text did.
    """
    sizes: dict[int, int] = {}
    busy = -1
    limit = budgets.yaml_values

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known == busy:
            raise SpecError(
                "an alias is used inside its own anchor", mark_location(file, node.start_mark)
            )
        if known is not None:
            return known
        sizes[id(node)] = busy
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        if total > limit:
            raise budgets.exceeded(
                "yaml_values",
                f"the document expands to more than {limit:,} values (alias bomb?)",
                mark_location(file, node.start_mark),
            )
        sizes[id(node)] = total
        return total

    size(root)
