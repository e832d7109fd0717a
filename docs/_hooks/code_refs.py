"""MkDocs hook: names of the code quoted in the docs must exist, so a rename that forgets the docs fails
``mkdocs build --strict``.

Checked in inline code spans (not in code blocks): dotted names under the project's packages
(```pipeline.store.open_store```, ```models.checkpoints.load_checkpoint(path)```: the module is imported
and the attribute looked up) and repository paths (```pipeline/io/atomic.py```, ```flows/*_flow.py```). A
name that does not resolve is a warning, which ``--strict`` turns into a failure.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from contextlib import contextmanager
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "models", "flows", "data_catalogs")
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
DOTTED = re.compile(rf"^(?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+")
REPO_PATH = re.compile(rf"^(?:{'|'.join((*PACKAGES, 'benchmarks', 'tests', 'docs'))})/[\w/.*-]*$")

log = logging.getLogger("mkdocs.hooks.code_refs")


#: Prefect parses flow docstrings with griffe on import; those warnings are not about the docs.
QUIET_ON_IMPORT = ("griffe", "mkdocs.plugins.griffe", "mkdocs.plugins.mkdocstrings_handlers.python")


@contextmanager
def _quiet_imports():
    loggers = [logging.getLogger(name) for name in QUIET_ON_IMPORT]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@cache
def _problem(dotted: str) -> str | None:
    """Why ``dotted`` does not resolve, or None when it names a module or an attribute of one."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    with _quiet_imports():
        return _lookup(dotted.split("."))


def _lookup(parts: list[str]) -> str | None:
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name == module:
                continue
            return f"importing {module} fails: {error}"
        except Exception as error:  # a module that does not import is not a name the docs can point to
            return f"importing {module} fails: {error!r}"
        for name in parts[cut:]:
            try:
                obj = getattr(obj, name)
            except AttributeError:
                return f"{module} has no {'.'.join(parts[cut:])}"
        return None
    return "no such module"


def _exists(path: str) -> bool:
    path = path.rstrip("/")
    return any(REPO.glob(path)) if "*" in path else (REPO / path).exists()


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    text = FENCE.sub("", markdown)
    for span in CODE_SPAN.findall(text):
        span = span.strip()
        dotted = DOTTED.match(span)
        problem = _problem(dotted.group(0)) if dotted else None
        if problem:
            log.warning(
                "%s: `%s` does not name anything in the code (%s)",
                page.file.src_path,
                dotted.group(0),
                problem,
            )
        elif REPO_PATH.match(span) and not _exists(span):
            log.warning("%s: `%s` is not a path in the repository", page.file.src_path, span)
    return markdown


README_LINK = re.compile(r"\]\((?!https?://|#)([^)#\s]+)(?:#([^)\s]+))?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


def on_pre_build(config, **kwargs) -> None:
    """README.md is not part of the site, so its links into docs/ are checked here (file and anchor)."""
    from markdown.extensions.toc import slugify

    for target, anchor in README_LINK.findall((REPO / "README.md").read_text()):
        path = REPO / target
        if not path.exists():
            log.warning("README.md: link to %s, which does not exist", target)
        elif anchor and path.suffix == ".md":
            slugs = {
                slugify(h.replace("`", ""), "-") for h in HEADING.findall(FENCE.sub("", path.read_text()))
            }
            if anchor not in slugs:
                log.warning("README.md: link to %s#%s, but %s has no such heading", target, anchor, target)
