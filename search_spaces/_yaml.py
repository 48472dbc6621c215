"""Reading the YAML a person wrote: safe (no Python objects), and strict about a key given twice, which
YAML itself resolves silently to the last one (`epochs: 3` ... `epochs: 50` would train 50)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adamtune.errors import InputError


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, first: int, second: int) -> None:
        super().__init__(f"key {key!r} given twice (lines {first} and {second}); keep one")
        self.key, self.first, self.second = key, first, second


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(str(key), seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, what: str = "file", error: type[InputError] = InputError) -> Any:
    """Safe-load YAML; a missing, unreadable or malformed file, or a key given twice, becomes `error`
    (an InputError) naming the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(str(path), "<file>", f"{what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(path), "<file>", f"{what} cannot be read: {exc}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as exc:
        raise error(str(path), exc.key, f"given twice (lines {exc.first} and {exc.second}); keep one") from None
    except yaml.YAMLError as exc:
        raise error(str(path), "<yaml>", f"not valid YAML: {exc}".replace("\n", " ")) from None
