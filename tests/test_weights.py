"""Weights registry: downloads from a loopback server, hash checks, offline use."""

import functools
import http.server
import threading
from pathlib import Path

import pytest

from jwst_embed import weights
from jwst_embed.weights import REGISTRY, WeightsError, WeightsFile, fetch_weights, sha256_of


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A weights file served by an HTTP server on 127.0.0.1, registered as 'test-model'."""
    root = tmp_path / "server"
    root.mkdir()
    payload = b"jwst_embed test weights " * 1000
    (root / "test-model.pt").write_bytes(payload)
    entry = WeightsFile("test-model", "test-model.pt", sha256_of(root / "test-model.pt"))
    monkeypatch.setitem(weights.REGISTRY, "test-model", entry)
    monkeypatch.setenv("JWST_EMBED_CACHE", str(tmp_path / "cache"))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("JWST_EMBED_WEIGHTS_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    state = {"server": server, "root": root, "payload": payload, "entry": entry}
    yield state
    server.shutdown()
    server.server_close()


def test_download_then_offline(served, tmp_path):
    path = fetch_weights("test-model")
    assert path.read_bytes() == served["payload"]
    assert path.parent == tmp_path / "cache"
    served["server"].shutdown()
    served["server"].server_close()
    again = fetch_weights("test-model")  # server gone: the verified cache is used
    assert again == path


def test_tampered_download_refused(served, tmp_path):
    (served["root"] / "test-model.pt").write_bytes(served["payload"] + b"evil")
    with pytest.raises(WeightsError, match="hash"):
        fetch_weights("test-model")
    assert not (tmp_path / "cache" / "test-model.pt").exists()


def test_tampered_cache_refused(served, tmp_path):
    path = fetch_weights("test-model")
    path.write_bytes(b"corrupted")
    with pytest.raises(WeightsError, match="fails its hash check"):
        fetch_weights("test-model")


def test_no_network_no_cache_says_how(served, tmp_path):
    served["server"].shutdown()
    served["server"].server_close()
    with pytest.raises(WeightsError, match="JWST_EMBED_WEIGHTS_URL"):
        fetch_weights("test-model")


def test_local_path_checked_when_registered(served, tmp_path):
    local = tmp_path / "test-model.pt"
    local.write_bytes(served["payload"])
    assert fetch_weights(local) == local
    local.write_bytes(b"tampered")
    with pytest.raises(WeightsError):
        fetch_weights(local)


def test_unknown_name():
    with pytest.raises(ValueError, match="not a registered model"):
        fetch_weights("no-such-model")
    with pytest.raises(ValueError, match="does not exist"):
        fetch_weights("no-such-model.pt")


def test_registered_name_never_resolves_to_a_file_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").write_bytes(b"not the shipped model")
    (tmp_path / "mine").write_bytes(b"a user's file")
    assert fetch_weights("default") != tmp_path / "default"
    assert sha256_of(fetch_weights("default")) == REGISTRY["default"].sha256
    # a bare word that is not registered is not taken for a file; a path that looks like one is
    with pytest.raises(ValueError, match="pass './mine'"):
        fetch_weights("mine")
    assert fetch_weights("./mine").resolve() == (tmp_path / "mine").resolve()
    assert fetch_weights(Path("default")) == Path("default")


class TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Announces 1,000 bytes and sends one every 0.2 s: never a read timeout, never done."""

    def do_GET(self):
        import time

        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:  # the client hung up
            pass

    def log_message(self, *args):
        pass


def test_trickling_mirror_times_out_and_leaves_nothing(served, tmp_path, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TrickleHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("JWST_EMBED_WEIGHTS_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("JWST_EMBED_DOWNLOAD_TIMEOUT", "1.5")
    try:
        with pytest.raises(WeightsError, match="took longer than 1.5 s"):
            fetch_weights("test-model")
    finally:
        server.shutdown()
        server.server_close()
    assert list((tmp_path / "cache").iterdir()) == []  # no partial or temporary file


def test_stale_temporary_files_are_cleaned_and_urls_need_a_scheme(served, tmp_path, monkeypatch):
    import os

    cache = tmp_path / "cache"
    cache.mkdir()
    stale, fresh = cache / "tmpabc123", cache / "tmpdef456"
    stale.write_bytes(b"half a download")
    fresh.write_bytes(b"a download in progress elsewhere")
    os.utime(stale, (0, 0))
    assert fetch_weights("test-model").read_bytes() == served["payload"]
    assert not stale.exists() and fresh.exists()
    monkeypatch.setenv("JWST_EMBED_WEIGHTS_URL", "mirror.example.org/weights")
    (cache / "test-model.pt").unlink()
    with pytest.raises(WeightsError, match="has no scheme"):
        fetch_weights("test-model")
