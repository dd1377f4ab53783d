import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import make_api_page  # noqa: E402


def test_api_page_is_current():
    assert make_api_page.PAGE.read_text() == make_api_page.render(), (
        "book/api.md is out of date: run `python tools/make_api_page.py`"
    )
