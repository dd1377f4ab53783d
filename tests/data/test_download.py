"""cvlib.data._download: checksums, atomic writes, failure clean-up and safe extraction."""

import gzip
import hashlib
import io
import tarfile
import urllib.error
import urllib.request
import zipfile

import pytest

from cvlib.data._download import (
    ChecksumError,
    DownloadError,
    cache_dir,
    download_any,
    download_url,
    extract_archive,
    sha256sum,
)

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB: more than one 1 MiB read chunk
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FakeResponse(io.BytesIO):
    """A urlopen() result whose read() can fail after ``fail_after`` bytes."""

    def __init__(self, data, fail_after=None, exc=None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}
        self.fail_after, self.exc = fail_after, exc

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise self.exc
        return super().read(n)


def _listing(path):
    return sorted(p.name for p in path.iterdir())


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CVLIB_DATA", str(tmp_path / "d"))
    assert cache_dir() == tmp_path / "d"
    monkeypatch.delenv("CVLIB_DATA")
    assert cache_dir().parts[-2:] == (".cache", "cvlib")


def test_download_file_url_and_skip_when_present(tmp_path, monkeypatch):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "cache" / "a.bin"
    assert download_url(src.as_uri(), dest, SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD and _listing(dest.parent) == ["a.bin"]

    def offline(*a, **k):
        raise AssertionError("must not download a verified file again")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert download_url("https://example.invalid/a.bin", dest, SHA, progress=False) == dest


def test_checksum_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "cache" / "a.bin"
    wrong = "0" * 64
    with pytest.raises(
        ChecksumError, match=rf"checksum mismatch for a\.bin .* expected sha256 {wrong}, got {SHA}"
    ):
        download_url(src.as_uri(), dest, wrong, progress=False)
    assert _listing(dest.parent) == []


def test_bad_sha256_argument(tmp_path):
    with pytest.raises(ValueError, match=r"sha256 must be 64 hex digits \(or a prefix of at least 8\)"):
        download_url("file:///x", tmp_path / "x", "abc")


def test_sha256_prefix_is_checked(tmp_path):
    """torchvision publishes only 8 hex digits of its weight files' hashes."""
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "cache" / "a.bin"
    assert download_url(src.as_uri(), dest, SHA[:8], progress=False).read_bytes() == PAYLOAD
    wrong = "f" * 8 if not SHA.startswith("f") else "0" * 8
    with pytest.raises(ChecksumError, match=f"expected sha256 {wrong}"):
        download_url(src.as_uri(), tmp_path / "cache" / "b.bin", wrong, progress=False)
    assert _listing(dest.parent) == ["a.bin"]


def test_offline_error_names_url_and_override(tmp_path, monkeypatch):
    def fail(url, timeout=None):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    url = "https://example.invalid/data.tar.gz"
    with pytest.raises(DownloadError, match=r"https://example\.invalid/data\.tar\.gz.*root=.*CVLIB_DATA"):
        download_url(url, tmp_path / "c" / "data.tar.gz", SHA, progress=False)
    assert _listing(tmp_path / "c") == []


@pytest.mark.parametrize("exc", [ConnectionResetError("reset by peer"), KeyboardInterrupt()])
def test_failure_mid_stream_leaves_no_partial_file(tmp_path, monkeypatch, exc):
    monkeypatch.setattr(
        urllib.request,
        "urlopen",
        lambda url, timeout=None: FakeResponse(PAYLOAD, fail_after=1 << 20, exc=exc),
    )
    dest = tmp_path / "c" / "a.bin"
    expected = KeyboardInterrupt if isinstance(exc, KeyboardInterrupt) else DownloadError
    with pytest.raises(expected):
        download_url("https://example.invalid/a.bin", dest, SHA, progress=False)
    assert _listing(dest.parent) == []  # neither a.bin nor a .part temp file


def test_download_any_falls_back_to_next_mirror(tmp_path, monkeypatch):
    calls = []

    def fake(url, timeout=None):
        calls.append(url)
        if "first" in url:
            raise urllib.error.URLError("down")
        return FakeResponse(PAYLOAD)

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    dest = download_any(["https://first/a", "https://second/a"], tmp_path / "a", SHA, progress=False)
    assert calls == ["https://first/a", "https://second/a"] and sha256sum(dest) == SHA
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: fake("first"))
    with pytest.raises(DownloadError, match=r"from any mirror:\n  https://x/b: .*down"):
        download_any(["https://x/b"], tmp_path / "b", SHA, progress=False)


def _make_tar_gz(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_extract_tar_gz(tmp_path):
    arc = tmp_path / "a.tar.gz"
    _make_tar_gz(arc, {"top/x.txt": b"hello", "top/sub/y.bin": PAYLOAD[:1000], "other.txt": b"o"})
    out = tmp_path / "out"
    created = extract_archive(arc, out)
    assert [p.name for p in created] == ["other.txt", "top"]
    assert (out / "top/x.txt").read_bytes() == b"hello" and (out / "top/sub/y.bin").read_bytes() == PAYLOAD[
        :1000
    ]
    assert _listing(out) == ["other.txt", "top"]  # no temporary directory left behind


@pytest.mark.parametrize("cut", [0.3, 0.9])
def test_truncated_tar_gz_is_a_clear_error_and_extracts_nothing(tmp_path, cut):
    arc = tmp_path / "a.tar.gz"
    rnd = hashlib.sha256(b"seed").digest() * 20000  # incompressible-ish so the cut hits file data
    _make_tar_gz(arc, {"top/x.bin": rnd, "top/y.bin": rnd[::-1]})
    data = arc.read_bytes()
    arc.write_bytes(data[: int(len(data) * cut)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(ValueError, match=r"a\.tar\.gz .*(corrupt|truncated)"):
        extract_archive(arc, out)
    assert _listing(out) == ["keep.txt"]


def test_not_an_archive(tmp_path):
    arc = tmp_path / "junk.tar.gz"
    arc.write_bytes(gzip.compress(b"not a tar file at all" * 3))
    with pytest.raises(ValueError, match=r"junk\.tar\.gz"):
        extract_archive(arc, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        extract_archive(tmp_path / "missing.tar", tmp_path / "out")


def test_zip_good_and_corrupt(tmp_path):
    arc = tmp_path / "a.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/x.txt", "zip content" * 100)
    extract_archive(arc, tmp_path / "ok")
    assert (tmp_path / "ok/d/x.txt").read_text() == "zip content" * 100
    data = bytearray(arc.read_bytes())
    data[40:60] = b"\xff" * 20  # damage the compressed member data
    arc.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"a\.zip"):
        extract_archive(arc, tmp_path / "bad")
    assert _listing(tmp_path / "bad") == []


def test_unsafe_members_are_refused(tmp_path):
    arc = tmp_path / "evil.tar"
    _make_tar_gz(arc, {"../escape.txt": b"x"})
    with pytest.raises(ValueError, match="outside the target directory"):
        extract_archive(arc, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tf:
        info = tarfile.TarInfo("l")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(ValueError, match="link or special file"):
        extract_archive(link, tmp_path / "out2")


class ShortResponse(io.BytesIO):
    """Announces ``announced`` bytes but serves fewer (a connection closed early)."""

    def __init__(self, data, announced):
        super().__init__(data)
        self.headers = {"Content-Length": str(announced)}


def _serve(monkeypatch, table):
    """Patch urlopen: ``table[url]`` is a response factory (or an exception to raise)."""
    opened = []

    def fake_urlopen(url, timeout=None):
        opened.append(url)
        item = table[url]
        if isinstance(item, BaseException):
            raise item
        return item()

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return opened


def test_truncated_transfer_tries_next_mirror(tmp_path, monkeypatch):
    short = PAYLOAD[: len(PAYLOAD) // 3]
    opened = _serve(
        monkeypatch,
        {
            "https://a.invalid/f": lambda: ShortResponse(short, len(PAYLOAD)),
            "https://b.invalid/f": lambda: FakeResponse(PAYLOAD),
        },
    )
    dest = tmp_path / "f.bin"
    assert download_any(["https://a.invalid/f", "https://b.invalid/f"], dest, SHA, progress=False) == dest
    assert opened == ["https://a.invalid/f", "https://b.invalid/f"]
    assert dest.read_bytes() == PAYLOAD and _listing(tmp_path) == ["f.bin"]


def test_truncated_everywhere_is_a_download_error_not_a_checksum_error(tmp_path, monkeypatch):
    _serve(monkeypatch, {"https://a.invalid/f": lambda: ShortResponse(PAYLOAD[:1000], len(PAYLOAD))})
    with pytest.raises(DownloadError, match=r"cut short: 1000 of 1280000 bytes"):
        download_any(["https://a.invalid/f"], tmp_path / "f.bin", SHA, progress=False)
    assert _listing(tmp_path) == []


def test_read_timeout_tries_next_mirror(tmp_path, monkeypatch):
    _serve(
        monkeypatch,
        {
            "https://a.invalid/f": lambda: FakeResponse(PAYLOAD, fail_after=0, exc=TimeoutError("timed out")),
            "https://b.invalid/f": lambda: FakeResponse(PAYLOAD),
        },
    )
    dest = tmp_path / "f.bin"
    download_any(["https://a.invalid/f", "https://b.invalid/f"], dest, SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_trickle_is_abandoned(tmp_path, monkeypatch):
    """A server sending 1 byte per second: the minimum average rate ends it after the grace period."""
    from cvlib.data import _download

    class Trickle(FakeResponse):
        def read(self, n=-1):
            return super().read(1)

    clock = iter(range(0, 10**6))  # each call to the clock: one more second
    monkeypatch.setattr(_download.time, "monotonic", lambda: float(next(clock)))
    _serve(monkeypatch, {"https://a.invalid/f": lambda: Trickle(PAYLOAD)})
    with pytest.raises(DownloadError, match=r"too slow \(\d+ bytes in \d+ s, below 1024 B/s\)"):
        download_url("https://a.invalid/f", tmp_path / "f.bin", SHA, progress=False)
    assert _listing(tmp_path) == []


def test_ctrl_c_leaves_no_part_file(tmp_path, monkeypatch):
    _serve(
        monkeypatch,
        {"https://a.invalid/f": lambda: FakeResponse(PAYLOAD, fail_after=1 << 20, exc=KeyboardInterrupt())},
    )
    with pytest.raises(KeyboardInterrupt):
        download_any(["https://a.invalid/f"], tmp_path / "f.bin", SHA, progress=False)
    assert _listing(tmp_path) == []


def test_orphan_part_files_are_cleaned(tmp_path, monkeypatch):
    import os
    import time

    old = tmp_path / ".f.bin.abc123.part"
    old.write_bytes(b"left by a killed process")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    old_dir = tmp_path / ".data.tar.xyz.extract"
    old_dir.mkdir()
    os.utime(old_dir, (time.time() - 3600, time.time() - 3600))
    live = tmp_path / ".g.bin.def456.part"  # another process is still writing this one
    live.write_bytes(b"fresh")
    _serve(monkeypatch, {"https://a.invalid/f": lambda: FakeResponse(PAYLOAD)})
    download_url("https://a.invalid/f", tmp_path / "f.bin", SHA, progress=False)
    assert _listing(tmp_path) == [".g.bin.def456.part", "f.bin"]


def test_checksum_override_is_test_only_and_validated(tmp_path, monkeypatch):
    from cvlib.data._download import CHECKSUMS_OVERRIDE_ENV, expected_sha256, verify_file

    monkeypatch.delenv(CHECKSUMS_OVERRIDE_ENV, raising=False)
    assert expected_sha256("f.bin", SHA) == SHA  # unset: the published value
    table = tmp_path / "o.json"
    table.write_text('{"f.bin": "' + "ab" * 32 + '"}')
    monkeypatch.setenv(CHECKSUMS_OVERRIDE_ENV, str(table))
    assert expected_sha256("sub/f.bin", SHA) == "ab" * 32 and expected_sha256("g.bin", SHA) == SHA
    table.write_text("not json")
    with pytest.raises(ValueError, match="CVLIB_CHECKSUMS_OVERRIDE"):
        expected_sha256("f.bin", SHA)
    (tmp_path / "f.bin").write_bytes(PAYLOAD[:-1])
    with pytest.raises(ChecksumError, match=r"f\.bin is not the thing: its sha256 is"):
        verify_file(tmp_path / "f.bin", SHA, "the thing")


def test_check_root(tmp_path):
    from cvlib.data._download import check_root

    assert check_root(None, tmp_path / "default") == tmp_path / "default"
    assert check_root(tmp_path, tmp_path / "default") == tmp_path
    with pytest.raises(NotADirectoryError, match=r"root='.*nope' is not an existing directory"):
        check_root(tmp_path / "nope", tmp_path / "default")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        check_root(tmp_path / "file", tmp_path / "default")
    with pytest.raises(TypeError, match="root must be a str or os.PathLike, got int"):
        check_root(3, tmp_path)
    assert _listing(tmp_path) == ["file"]


def test_mirror_with_other_bytes_is_skipped_but_reported(tmp_path, monkeypatch):
    other = PAYLOAD[::-1]
    _serve(
        monkeypatch,
        {
            "https://a.invalid/f": lambda: FakeResponse(other),
            "https://b.invalid/f": lambda: FakeResponse(PAYLOAD),
        },
    )
    dest = tmp_path / "f.bin"
    download_any(["https://a.invalid/f", "https://b.invalid/f"], dest, SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(
        ChecksumError, match=r"no mirror served g\.bin with the published sha256:\n  https://a"
    ):
        download_any(["https://a.invalid/f"], tmp_path / "g.bin", SHA, progress=False)
    assert _listing(tmp_path) == ["f.bin"]
