"""The parser every command shares: argparse with the "did you mean" of git and cargo, and the
command line it parsed."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse with the "did you mean" of git and cargo for a mistyped command or option.

    The top-level parser keeps the words it parses (`parse_words`); a command's parser, whose
    errors name the options of the whole command line, reaches them through `top`."""

    words: tuple[str, ...] = ()  # the top-level parser's: the command line being parsed
    top: Parser | None = None  # a command's parser: the top-level one (set by make_parser)

    def parse_words(self, words: Sequence[str]) -> argparse.Namespace:
        """Parse a command line (the words after the program's name). The namespace keeps
        them as `argv`: the command line a handler runs again (train's replicas)."""
        self.words = tuple(words)
        args = self.parse_args(self.words)
        args.argv = list(self.words)
        return args

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        hint = self._suggestion(message)
        if hint:
            print(f"  hint: {hint}", file=sys.stderr)
        sys.exit(2)

    def _suggestion(self, message: str) -> str | None:
        from xgraph.errors import did_you_mean

        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            return did_you_mean(choice.group(1), re.findall(r"'?([\w-]+)'?", choice.group(2)))
        known = self._all_options()
        for word in self._top().words:  # an option nobody knows, such as --backnd: its nearest
            option = word.split("=", 1)[0]
            if option.startswith("--") and option not in known:
                suggestion = did_you_mean(option, known)
                return f"'{option}' is not an option: {suggestion}" if suggestion else None
        return None

    def _top(self) -> Parser:
        return self.top or self

    def _all_options(self) -> list[str]:
        """The top-level options and those of the command being run."""
        top = self._top()
        options = list(top._option_string_actions)
        command = next((word for word in top.words if not word.startswith("-")), None)
        for action in top._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                options += list(action.choices[command]._option_string_actions)
        return options
