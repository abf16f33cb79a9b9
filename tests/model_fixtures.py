"""Tiny sentence-transformers models built locally from random weights (nothing downloaded), for
the encoders' handling of models other than the bundled one: a RoBERTa whose tokenizer gives no
token_type_ids (as the XLM-R based paraphrase-multilingual-*, multilingual-e5 and bge-m3), with
or without a Dense module after pooling (as LaBSE, distiluse-* and sentence-t5). Their vectors
mean nothing; the tests compare each encoder's vectors with the model's own (torch)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.text_fixtures import DOCS

HIDDEN = 32


def tiny_roberta(out: Path, *, dense: int | None = None) -> Path:
    """A 2-layer, 32-dimensional RoBERTa model directory at `out`, mean pooling, then (`dense`) a
    Dense projection to that many dimensions, then normalisation."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

    torch.manual_seed(0)
    hf = out.with_name(out.name + "-hf")
    _roberta(hf)
    modules = [Transformer(str(hf), max_seq_length=128), Pooling(HIDDEN, "mean")]
    if dense:
        modules.append(Dense(HIDDEN, dense, activation_function=torch.nn.Tanh()))
    SentenceTransformer(modules=[*modules, Normalize()], device="cpu").save(str(out))
    shutil.rmtree(hf)
    return out


def _roberta(out: Path) -> None:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([f"{t}\n{x}" for _, t, x in DOCS], vocab_size=400, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>", mask_token="<mask>",
                                        model_input_names=["input_ids", "attention_mask"])  # fmt: skip
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=260, type_vocab_size=1, pad_token_id=1)  # fmt: skip
    RobertaModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def perturb_weights(weights: Path, seed: int = 1) -> None:
    """New values for every weight in the safetensors file, saved over it with the same names,
    shapes and metadata, so the file keeps its size (a fine-tune saved into the same folder)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    size = weights.stat().st_size
    with safe_open(str(weights), "pt") as fh:
        metadata = fh.metadata()
    generator = torch.Generator().manual_seed(seed)
    tensors = {name: t + torch.randn(t.shape, generator=generator, dtype=t.dtype) * 0.5 if t.is_floating_point() else t
               for name, t in load_file(str(weights)).items()}  # fmt: skip
    save_file(tensors, str(weights), metadata=metadata)
    assert weights.stat().st_size == size
