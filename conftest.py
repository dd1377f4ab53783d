"""Repository-wide pytest configuration: keep every notebook in one pytest-xdist worker.

nbval runs a notebook's cells as consecutive test items in one kernel per worker. xdist's default
``--dist load`` (what ``-n N`` alone means) spreads items over workers one by one, so the tail of a
notebook would run in a kernel that never ran its imports (spurious ``NameError``). Whatever the
command line, the ``load``, ``worksteal`` and ``loadgroup`` modes here use one scheduler that sends
all cells of a ``.ipynb`` file to one worker, in order, and balances every other test one by one
(as ``load`` does). ``loadfile``, ``loadscope`` and ``each`` already keep a file in one worker.

(xdist's own ``xdist_group`` route does not work with pytest >= 9: its worker hook renames
``item._nodeid``, which node ids no longer read; this scheduler needs nothing from the workers.)

Under ``loadfile`` (what ``make test`` uses) a file is one unit, except the chapter runs of the
fast-dev-run (``tests/fastdev/test_fastdev.py::test_chapter_full_configuration[...]``, minutes each):
each is its own unit, so they spread over the workers instead of queuing in one.
"""

from __future__ import annotations

import pytest

_SPLITTING_MODES = ("load", "worksteal", "loadgroup")
_OWN_UNIT = ("tests/fastdev/test_fastdev.py::test_chapter_full_configuration[",)  # long, one per unit


def _notebook_scope(nodeid: str) -> str:
    """The scheduling unit of a node id: the notebook file for nbval cells, else the test itself."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return path
    at = nodeid.rfind("@")
    return nodeid[at + 1 :] if at > nodeid.rfind("]") else nodeid  # an explicit xdist_group suffix


def _file_scope(nodeid: str) -> str:
    """The scheduling unit under ``loadfile``: the file, except for the long tests of ``_OWN_UNIT``."""
    if nodeid.startswith(_OWN_UNIT):
        return nodeid
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """xdist hook (controller only): a scope scheduler whose scopes are notebooks and single tests
    (``load``-like modes) or files with the long chapter runs split out (``loadfile``)."""
    if config.getvalue("dist") == "loadfile":
        from xdist.scheduler import LoadFileScheduling

        class FileScheduling(LoadFileScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return _file_scope(nodeid)

        return FileScheduling(config, log)
    if config.getvalue("dist") not in _SPLITTING_MODES:
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebookScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _notebook_scope(nodeid)

    return NotebookScheduling(config, log)
