"""The sentence-transformers model run by torch in bfloat16: a passage encoder for builds on CPUs
with bfloat16 matrix units (Intel AMX, AVX512-BF16) or on a GPU.

The transformer's weights and activations are bfloat16; each text's token states are pooled (mean
or CLS) and L2-normalised in float32, so the vectors stay within cosine ~1e-4 of the fp32 model's
(with the model's own pooling and normalisation in bfloat16, SciFact passages fell to 0.996). Queries of such a build are encoded in
fp32 (`EncoderSection.encoder_settings`: ONNX Runtime on the CPU), a pair whose SciFact nDCG@10
equals the fp32 build's (docs/BENCHMARKS.md, issue 14). `Bf16Encoder` offers the part of the
`SentenceTransformer` interface `backends.faiss.encoder` uses (encode, tokenizer, max_seq_length,
device, dimension). Nothing heavy is imported at module import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backends.faiss.onnx import ends_normalized, pooling_mode, unit_rows
from indexer.errors import ConfigError
from indexer.settings import Encoder

# CPU features with which bfloat16 matrix products run natively (oneDNN); without them torch
# emulates bfloat16 and runs slower than float32.
BF16_FEATURES = ("amx_bf16", "avx512_bf16")


def native_bf16(capability: Mapping[str, Any]) -> bool:
    """Whether a CPU with these features (torch's `_get_cpu_capability()` keys) runs bfloat16 natively."""
    return any(bool(capability.get(name)) for name in BF16_FEATURES)


def cpu_capability() -> Mapping[str, Any]:
    """This CPU's features as torch's dispatcher sees them; where torch does not say (a private
    API), Linux's CPU flags, which use the same names; else {}."""
    import torch

    try:
        return torch._C._cpu._get_cpu_capability()  # the features oneDNN dispatches on (no public API)
    except (AttributeError, RuntimeError):
        try:
            flags = set(Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").split())
        except OSError:
            return {}
        return {name: name in flags for name in BF16_FEATURES}


class Bf16Encoder:
    """`st_model` converted to bfloat16 (in place: the caller hands it over)."""

    kind: Encoder = "st-bf16"

    def __init__(self, st_model: Any):
        import torch

        self.pooling = pooling_mode(st_model, "st-bf16")
        self.device = st_model.device
        if self.device.type == "cpu" and not native_bf16(cpu_capability()):
            raise ConfigError("st-bf16 needs a CPU with bfloat16 instructions (AMX or AVX512-BF16) or a GPU; "
                              "use --encoder onnx", where="encoder")  # fmt: skip
        if self.device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
            raise ConfigError("st-bf16 needs a GPU with bfloat16 units (Ampere or newer); use --encoder st",
                              where="encoder")  # fmt: skip
        self._normalize = ends_normalized(st_model)
        self._transformer = st_model[0].auto_model.to(torch.bfloat16).eval()
        self.tokenizer = st_model.tokenizer
        self.max_seq_length = int(st_model.max_seq_length)
        self._dimension = int(st_model.get_embedding_dimension())

    def get_sentence_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64, convert_to_numpy: bool = True,
               normalize_embeddings: bool = False, show_progress_bar: bool = False) -> np.ndarray:  # fmt: skip
        """Embeddings of `texts` in order (float32), `batch_size` texts a forward pass, the texts
        sorted by length so that a pass pads little."""
        import torch

        texts = [t.strip() for t in texts]
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        step = max(1, batch_size)
        with torch.inference_mode():
            for start in range(0, len(order), step):
                rows = order[start : start + step]
                feed = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                      max_length=self.max_seq_length, return_tensors="pt").to(self.device)  # fmt: skip
                states = self._transformer(**feed).last_hidden_state.float()
                if self.pooling == "cls":
                    pooled = states[:, 0]
                else:
                    mask = feed["attention_mask"].unsqueeze(-1).float()
                    pooled = (states * mask).sum(dim=1) / mask.sum(dim=1)
                out[rows] = pooled.cpu().numpy()
        return unit_rows(out) if normalize_embeddings or self._normalize else out
