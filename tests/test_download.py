"""The resumable downloader against a loopback HTTP server serving fixture files."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from lib.download import DownloadError, download, sha256_of


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files``; honours Range unless ``no_range``; the first ``truncate`` responses
    stop half-way (a dropped connection)."""

    files: dict[str, bytes] = {}
    state = {"truncate": 0, "no_range": False, "requests": []}

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        body = self.files.get(self.path)
        rng = self.headers.get("Range")
        self.state["requests"].append((self.path, rng))
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng and not self.state["no_range"]:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if self.state["truncate"] > 0:
            self.state["truncate"] -= 1
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(chunk)


@pytest.fixture
def server():
    _Handler.files = {"/a.bin": bytes(range(256)) * 4000, "/b.txt": b"hello world\n" * 100}
    _Handler.state = {"truncate": 0, "no_range": False, "requests": []}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()
    httpd.server_close()


def test_downloads_and_verifies(server, tmp_path):
    url, h = server
    body = h.files["/a.bin"]
    out = download(f"{url}/a.bin", tmp_path / "x" / "a.bin", size=len(body),
                   sha256=hashlib.sha256(body).hexdigest(), progress=False)
    assert out.read_bytes() == body
    assert not (tmp_path / "x" / "a.bin.part").exists()
    n = len(h.state["requests"])
    download(f"{url}/a.bin", out, size=len(body), progress=False)  # verified file: no request
    assert len(h.state["requests"]) == n


def test_resumes_after_dropped_connection(server, tmp_path):
    url, h = server
    h.state["truncate"] = 1
    body = h.files["/a.bin"]
    out = download(f"{url}/a.bin", tmp_path / "a.bin", progress=False, retries=2)
    assert out.read_bytes() == body
    ranges = [r for _, r in h.state["requests"]]
    assert ranges[0] is None and ranges[1] == f"bytes={len(body) // 2}-"


def test_resumes_existing_part_file(server, tmp_path):
    url, h = server
    body = h.files["/b.txt"]
    (tmp_path / "b.txt.part").write_bytes(body[:500])
    out = download(f"{url}/b.txt", tmp_path / "b.txt", size=len(body), progress=False)
    assert out.read_bytes() == body
    assert h.state["requests"] == [("/b.txt", "bytes=500-")]


def test_server_ignoring_range_restarts(server, tmp_path):
    url, h = server
    h.state["no_range"] = True
    body = h.files["/b.txt"]
    (tmp_path / "b.txt.part").write_bytes(b"garbage" * 10)
    out = download(f"{url}/b.txt", tmp_path / "b.txt", progress=False)
    assert out.read_bytes() == body


def test_checksum_mismatch_is_an_error_and_leaves_no_file(server, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download(f"{url}/b.txt", tmp_path / "b.txt", sha256="0" * 64, progress=False, retries=1)
    assert not (tmp_path / "b.txt").exists()


def test_wrong_size_and_missing_file(server, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError, match="expected 5 bytes"):
        download(f"{url}/b.txt", tmp_path / "b.txt", size=5, progress=False, retries=0)
    with pytest.raises(DownloadError, match="404"):
        download(f"{url}/nope", tmp_path / "nope", progress=False)
    assert not (tmp_path / "b.txt").exists() and not (tmp_path / "nope").exists()


def test_sha256_of(tmp_path):
    p = Path(tmp_path / "f")
    p.write_bytes(b"abc")
    assert sha256_of(p) == hashlib.sha256(b"abc").hexdigest()
