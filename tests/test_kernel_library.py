"""The kernel library: verified kernels keyed by problem signature and hardware, with their evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunesmith.kernels.library import KernelLibrary, hardware_fingerprint, iter_kernels, signature_key
from tunesmith.runners.errors import InfrastructureError, TunesmithError

SIG = {"ops": ["aten.softmax"], "shapes": [[4, 64]], "dtypes": ["float32"]}
OK = {"status": "ok", "strict_ok": True, "loose_ok": True, "max_abs_err": 1e-7, "timing": None,
      "timing_note": "timing unavailable: no GPU (Triton interpreter, correctness only)"}


def _add(lib: KernelLibrary, **kw):  # noqa: ANN202
    args = dict(problem="softmax", pattern="row softmax", signature=SIG, hardware={"gpu": None, "cpu": "x"},
                source="import torch\n", origin="template", evidence=OK, config={"BLOCK": 64})
    args.update(kw)
    return lib.add(**args)


def test_store_and_answer_a_known_problem_on_known_hardware(tmp_path: Path) -> None:
    lib = KernelLibrary(tmp_path / "kernels.db")
    rec = _add(lib)
    assert rec.id == 1 and rec.strict_ok and rec.config == {"BLOCK": 64} and not rec.timed
    assert "timing unavailable" in rec.speed_text()
    hit = lib.lookup({"dtypes": ["float32"], "shapes": [[4, 64]], "ops": ["aten.softmax"]}, rec.hardware_id)
    assert hit is not None and hit.id == rec.id  # key order does not matter
    assert lib.lookup(SIG, "other-hardware") is None
    assert lib.lookup({**SIG, "shapes": [[8, 64]]}, rec.hardware_id) is None


def test_lookup_prefers_strict_then_fastest(tmp_path: Path) -> None:
    lib = KernelLibrary(tmp_path / "kernels.db")
    loose = _add(lib, evidence={**OK, "strict_ok": False, "timing": {"speedup_eager": 3.0, "speedup_compile": 3.0}})
    slow = _add(lib, evidence={**OK, "timing": {"speedup_eager": 1.1, "speedup_compile": 0.9}})
    fast = _add(lib, evidence={**OK, "timing": {"speedup_eager": 2.0, "speedup_compile": 1.5}})
    best = lib.lookup(SIG, fast.hardware_id)
    assert best is not None and best.id == fast.id and best.speedup_compile == 1.5
    assert "1.50x vs torch.compile" in best.speed_text()
    assert {loose.id, slow.id} < {r.id for r in lib.records()}


def test_refuses_an_unverified_kernel(tmp_path: Path) -> None:
    lib = KernelLibrary(tmp_path / "kernels.db")
    with pytest.raises(TunesmithError, match="unverified"):
        _add(lib, evidence={**OK, "status": "incorrect", "strict_ok": False, "loose_ok": False})
    assert lib.records() == []


def test_iter_kernels_for_retrieval_and_missing_library(tmp_path: Path) -> None:
    path = tmp_path / "kernels.db"
    assert list(iter_kernels(path)) == []
    assert not path.exists()  # reading never creates it
    with KernelLibrary(path) as lib:
        _add(lib)
        _add(lib, problem="layernorm", signature={"ops": ["aten.layer_norm"]}, pattern="layer norm")
    docs = [r.document() for r in iter_kernels(path)]
    assert len(docs) == 2 and "aten.layer_norm" in docs[1] and "import torch" in docs[0]
    with KernelLibrary(path) as lib:
        assert [r.problem for r in lib.similar(["aten.layer_norm", "aten.add"])] == ["layernorm"]
        with pytest.raises(TunesmithError, match="no kernel #9"):
            lib.get(9)


def test_damaged_library_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "kernels.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InfrastructureError, match="cannot be used"):
        KernelLibrary(path).records()


def test_hardware_fingerprint_separates_interpreter_runs() -> None:
    fp_i, id_i = hardware_fingerprint(interpreted=True)
    fp_g, id_g = hardware_fingerprint(interpreted=False)
    assert fp_i["triton_interpret"] and id_i != id_g
    assert hardware_fingerprint(interpreted=True)[1] == id_i
    assert signature_key(SIG) == signature_key(dict(reversed(SIG.items())))
