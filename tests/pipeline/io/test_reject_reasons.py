"""Every reject reason the code can write is in the one table of docs/data-contracts.md (issue 18), and the
table lists no reason the code no longer writes. The reasons are read from the code itself: the keys of
every ``*REASONS`` dict, and the string reasons handed to the reject constructors and recorders."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO

#: Calls whose first argument is a reason, and calls whose second argument is one.
REASON_FIRST = {"StampRejected", "AlertFileError"}
REASON_SECOND = {"Reject", "PacketError", "CatalogError", "TableReadError", "reject", "add"}
CODE = re.compile(r"[a-z][a-z0-9_]*")


def _reason_of(node: ast.Call) -> str | None:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    index = 0 if name in REASON_FIRST else 1 if name in REASON_SECOND else None
    if index is None or len(node.args) <= index:
        return None
    arg = node.args[index]
    ok = isinstance(arg, ast.Constant) and isinstance(arg.value, str) and CODE.fullmatch(arg.value)
    return arg.value if ok else None


def _dict_keys(node: ast.AST) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    named = any(isinstance(t, ast.Name) and t.id.endswith("REASONS") for t in targets)
    value = getattr(node, "value", None)
    if not named or not isinstance(value, ast.Dict):
        return []
    return [k.value for k in value.keys if isinstance(k, ast.Constant)]


def code_reasons() -> dict[str, str]:
    """reason -> where the code writes it first (``path:line``), over pipeline/ and data_catalogs/."""
    found: dict[str, str] = {}
    for root in ("pipeline", "data_catalogs"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, (ast.Assign, ast.AnnAssign)):
                    for key in _dict_keys(node):
                        found.setdefault(key, where)
                elif isinstance(node, ast.Call) and (reason := _reason_of(node)):
                    found.setdefault(reason, where)
    return found


def documented_reasons() -> list[str]:
    """The reasons of the table in the Rejects section of docs/data-contracts.md, in order."""
    text = (REPO / "docs" / "data-contracts.md").read_text()
    section = text.split("\n## Rejects\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.M)


def test_every_reason_the_code_writes_is_documented_once():
    code, docs = code_reasons(), documented_reasons()
    assert {"bad_header", "truncated_image", "unexpected_error", "bad_position"} <= set(code)
    missing = {reason: where for reason, where in code.items() if reason not in docs}
    assert not missing, f"reject reasons missing from docs/data-contracts.md (Rejects table): {missing}"
    stale = sorted(set(docs) - set(code))
    assert not stale, f"docs/data-contracts.md lists reasons no code writes: {stale}"
    assert len(docs) == len(set(docs)), "a reason is listed twice"
