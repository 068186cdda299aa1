"""Configuration of the im2latex model."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class Im2LatexConfig(PreTrainedConfig):
    r"""
    Configuration of [`Im2LatexForConditionalGeneration`]: a timm CNN trunk that encodes a formula image
    into a 2D feature map, and a Transformer decoder that writes the LaTeX tokens.

    Args:
        backbone (`str`): timm model name of the convolutional trunk.
        backbone_out_index (`int`): which trunk stage feeds the decoder (ResNet: 1=layer1 ... 4=layer4).
            The default 3 (layer3, stride 16) drops layer4.
        stem_pool_stride (`int` or `list[int]`): stride of the trunk stem's max-pool, one for both axes or
            `[height, width]`. 2 is the trunk as built (ResNet layer3: features at stride 16); 1 halves the feature
            stride (8: four times the cells); `[1, 2]` halves it vertically only (stride 8 × 16), for small marks
            above and below glyphs. It changes no weight, so a model trained with one loads with another.
        num_channels (`int`): image channels (1: grayscale).
        d_model (`int`): width of the decoder and of the projected image features.
        decoder_layers / decoder_attention_heads / decoder_ffn_dim (`int`): decoder size.
        dropout / attention_dropout (`float`): dropout rates.
        max_position_embeddings (`int`): longest token sequence the decoder accepts.
        init_std (`float`): std of the normal init of linear and embedding weights.
    """

    model_type = "im2latex"
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "decoder_attention_heads",
        "num_hidden_layers": "decoder_layers",
    }

    vocab_size: int = 512
    backbone: str = "resnet18"
    backbone_out_index: int = 3
    stem_pool_stride: int | list[int] = 2
    num_channels: int = 1
    d_model: int = 256
    decoder_layers: int = 3
    decoder_attention_heads: int = 8
    decoder_ffn_dim: int = 1024
    dropout: float | int = 0.1
    attention_dropout: float | int = 0.0
    max_position_embeddings: int = 256
    init_std: float = 0.02
    use_cache: bool = True
    is_encoder_decoder: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    decoder_start_token_id: int | None = 1
    tie_word_embeddings: bool = False


__all__ = ["Im2LatexConfig"]
