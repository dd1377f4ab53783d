"""Repository-wide pytest configuration: keep every notebook in one pytest-xdist worker.

nbval runs a notebook's cells as consecutive test items in one kernel per worker. xdist's default
``--dist load`` (what ``-n N`` alone means) spreads items over workers one by one, so the tail of a
notebook would run in a kernel that never ran its imports (spurious ``NameError``). Whatever the
command line, the ``load``, ``worksteal`` and ``loadgroup`` modes here use one scheduler that sends
all cells of a ``.ipynb`` file to one worker, in order, and balances every other test one by one
(as ``load`` does). ``loadfile``, ``loadscope`` and ``each`` already keep a file in one worker.

(xdist's own ``xdist_group`` route does not work with pytest >= 9: its worker hook renames
``item._nodeid``, which node ids no longer read; this scheduler needs nothing from the workers.)
"""

from __future__ import annotations

import pytest

_SPLITTING_MODES = ("load", "worksteal", "loadgroup")


def _notebook_scope(nodeid: str) -> str:
    """The scheduling unit of a node id: the notebook file for nbval cells, else the test itself."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return path
    at = nodeid.rfind("@")
    return nodeid[at + 1 :] if at > nodeid.rfind("]") else nodeid  # an explicit xdist_group suffix


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """xdist hook (controller only): a scope scheduler whose scopes are notebooks and single tests."""
    if config.getvalue("dist") not in _SPLITTING_MODES:
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebookScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _notebook_scope(nodeid)

    return NotebookScheduling(config, log)
