"""An open_clip text tower as a transformers ``CLIPTextModel``, for diffusers pipelines.

Stable Diffusion conditions its UNet on the per-token hidden states of a frozen, contrastively
pretrained CLIP text encoder. :func:`open_clip_text_encoder` does the same for any open_clip CLIP whose
text tower is the standard causal transformer (``token_embedding``, ``positional_embedding``,
``transformer.resblocks`` with ``nn.MultiheadAttention``, ``ln_final``): the weights are copied into a
:class:`~transformers.CLIPTextModel` of the same shape, so ``last_hidden_state`` equals open_clip's
``ln_final`` output token for token, and the pipeline saves and reloads it with ``save_pretrained``.
The world's tiny pipeline uses it to start from the text tower of a CLIP trained on the world.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPTextConfig, CLIPTextModel

from biaslib.errors import BiaslibError

#: open_clip's BPE ids of the start/end-of-text tokens (also transformers' CLIP ids).
BOS_TOKEN_ID, EOS_TOKEN_ID = 49406, 49407


class UnsupportedTextTowerError(BiaslibError, ValueError):
    """The open_clip model's text tower is not the standard CLIP causal transformer."""


def open_clip_text_encoder(model: torch.nn.Module) -> CLIPTextModel:
    """Copy the text tower of an open_clip ``CLIP`` model into a new ``CLIPTextModel`` (float32, eval mode).

    Shapes: width ``d`` = ``token_embedding.embedding_dim``, context ``n`` =
    ``positional_embedding.shape[0]``; ``CLIPTextModel(ids (B, n)).last_hidden_state`` is ``(B, n, d)``
    and equals open_clip's ``ln_final(transformer(token_embedding(ids) + positional_embedding))``.
    The projection into the joint embedding space (``text_projection``) is not part of a
    ``CLIPTextModel`` and is dropped (diffusers conditions on the hidden states).

    Raises :class:`UnsupportedTextTowerError` for towers with other blocks (custom HF text towers,
    LayerScale, attention poolers, non-causal masks).
    """
    blocks = getattr(getattr(model, "transformer", None), "resblocks", None)
    needed = ("token_embedding", "positional_embedding", "ln_final")
    if blocks is None or not all(hasattr(model, name) for name in needed):
        raise UnsupportedTextTowerError(
            f"{type(model).__name__} has no standard open_clip text tower (token_embedding, positional_embedding, "
            "transformer.resblocks, ln_final); only CLIP models with the built-in text transformer convert")
    if getattr(model, "text_pool_type", "argmax") != "argmax" or getattr(model, "attn_mask", None) is None:
        raise UnsupportedTextTowerError("only causal text towers pooled at the end-of-text token convert "
                                        f"(text_pool_type={getattr(model, 'text_pool_type', None)!r})")
    first = blocks[0]
    if not isinstance(first.attn, torch.nn.MultiheadAttention) or not all(
            isinstance(getattr(block, name, torch.nn.Identity()), torch.nn.Identity)
            for block in blocks for name in ("ls_1", "ls_2", "ln_attn")):
        raise UnsupportedTextTowerError("text blocks with LayerScale, attention norms or custom attention "
                                        "do not convert")
    act = type(first.mlp.gelu).__name__
    if act not in ("GELU", "QuickGELU"):
        raise UnsupportedTextTowerError(f"text MLP activation {act} has no transformers equivalent")

    width = model.token_embedding.embedding_dim
    config = CLIPTextConfig(
        vocab_size=model.token_embedding.num_embeddings, hidden_size=width,
        intermediate_size=first.mlp.c_fc.out_features, num_hidden_layers=len(blocks),
        num_attention_heads=first.attn.num_heads, max_position_embeddings=model.positional_embedding.shape[0],
        hidden_act="quick_gelu" if act == "QuickGELU" else "gelu", layer_norm_eps=model.ln_final.eps,
        bos_token_id=BOS_TOKEN_ID, eos_token_id=EOS_TOKEN_ID, pad_token_id=EOS_TOKEN_ID,
    )
    state = {
        "embeddings.token_embedding.weight": model.token_embedding.weight,
        "embeddings.position_embedding.weight": model.positional_embedding,
        "final_layer_norm.weight": model.ln_final.weight,
        "final_layer_norm.bias": model.ln_final.bias,
    }
    for i, block in enumerate(blocks):
        prefix = f"encoder.layers.{i}."
        q, k, v = block.attn.in_proj_weight.chunk(3)
        qb, kb, vb = block.attn.in_proj_bias.chunk(3)
        state |= {
            prefix + "self_attn.q_proj.weight": q, prefix + "self_attn.q_proj.bias": qb,
            prefix + "self_attn.k_proj.weight": k, prefix + "self_attn.k_proj.bias": kb,
            prefix + "self_attn.v_proj.weight": v, prefix + "self_attn.v_proj.bias": vb,
            prefix + "self_attn.out_proj.weight": block.attn.out_proj.weight,
            prefix + "self_attn.out_proj.bias": block.attn.out_proj.bias,
            prefix + "layer_norm1.weight": block.ln_1.weight, prefix + "layer_norm1.bias": block.ln_1.bias,
            prefix + "layer_norm2.weight": block.ln_2.weight, prefix + "layer_norm2.bias": block.ln_2.bias,
            prefix + "mlp.fc1.weight": block.mlp.c_fc.weight, prefix + "mlp.fc1.bias": block.mlp.c_fc.bias,
            prefix + "mlp.fc2.weight": block.mlp.c_proj.weight, prefix + "mlp.fc2.bias": block.mlp.c_proj.bias,
        }
    encoder = CLIPTextModel(config)
    missing, unexpected = encoder.load_state_dict({k: v.detach().float().clone() for k, v in state.items()},
                                                  strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise UnsupportedTextTowerError(f"text tower does not map onto CLIPTextModel: missing {missing}, "
                                        f"unexpected {unexpected}")
    return encoder.eval()


def load_open_clip_text_encoder(checkpoint: str | Path, model_name: str) -> CLIPTextModel:
    """:func:`open_clip_text_encoder` of open_clip model ``model_name`` loaded from a local ``checkpoint``
    (read like :func:`biaslib.models.load_clip`: clear errors for a missing, corrupt or mismatched file)."""
    from biaslib.models import load_clip

    model, _, _ = load_clip(checkpoint, model_name, device="cpu", precision="fp32")
    return open_clip_text_encoder(model)


__all__ = ["UnsupportedTextTowerError", "load_open_clip_text_encoder", "open_clip_text_encoder"]
