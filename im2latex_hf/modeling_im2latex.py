"""The im2latex model: a timm CNN trunk with 2D positional encoding, and a Transformer decoder.

The decoder works with transformers' generation (greedy, beam search) through the library's
`EncoderDecoderCache`: self-attention keys/values grow token by token, cross-attention keys/values
are computed once from the image features and reused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

from .configuration_im2latex import Im2LatexConfig


def position_encoding_2d(height: int, width: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """Sinusoidal 2D positional encoding of shape (dim, height, width): half the channels encode y, half x."""
    if dim % 4:
        raise ValueError(f"d_model must be divisible by 4 for the 2D positional encoding, got {dim}")
    quarter = dim // 4
    inv_freq = torch.exp(torch.arange(quarter, device=device, dtype=torch.float32) * (-math.log(10000.0) / quarter))
    y = torch.arange(height, device=device, dtype=torch.float32)[:, None] * inv_freq  # (height, quarter)
    x = torch.arange(width, device=device, dtype=torch.float32)[:, None] * inv_freq  # (width, quarter)
    y_enc = torch.cat([y.sin(), y.cos()], dim=1).T[:, :, None].expand(-1, height, width)
    x_enc = torch.cat([x.sin(), x.cos()], dim=1).T[:, None, :].expand(-1, height, width)
    return torch.cat([y_enc, x_enc], dim=0).to(dtype)


@dataclass
class Im2LatexEncoderOutput(BaseModelOutput):
    r"""
    attention_mask (`torch.BoolTensor` of shape `(batch, cells)`): True for the feature cells that hold image
        rather than batch padding. It travels with the encoder outputs, which `generate` keeps (and expands
        for beams) for every decoding step.
    """

    attention_mask: torch.Tensor | None = None


PADDING_WRITERS = (nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d)  # trunk layers whose output padding is zeroed


class Im2LatexImageEncoder(nn.Module):
    """Image → memory sequence: CNN trunk, 1×1 projection to d_model, 2D positions, flattened row by row.

    With a `pixel_mask`, batch padding is zeroed after every trunk layer that can write into it: a BatchNorm
    (its shift) and a pooling layer (a window at an image's edge reads its valid cells). Each image's features
    are then exactly those it gets alone: zeros are what a convolution sees beyond an image's edge.
    """

    main_input_name = "pixel_values"

    def __init__(self, config: Im2LatexConfig):
        super().__init__()
        self.trunk = timm.create_model(
            config.backbone,
            pretrained=False,
            features_only=True,
            out_indices=(config.backbone_out_index,),
            in_chans=config.num_channels,
        )
        set_stem_pool_stride(self.trunk, config.stem_pool_stride)
        self.projection = nn.Conv2d(self.trunk.feature_info.channels()[-1], config.d_model, kernel_size=1)
        self.layer_norm = nn.LayerNorm(config.d_model)
        self._pixel_mask: torch.Tensor | None = None  # set during forward, read by the hooks
        for module in self.trunk.modules():
            if isinstance(module, PADDING_WRITERS):
                module.register_forward_hook(self._zero_padding)

    def _zero_padding(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if self._pixel_mask is None:
            return None
        height, width = output.shape[-2:]
        return output * cell_mask(self._pixel_mask, height, width)[:, None].to(output.dtype)

    def forward(
        self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None = None, **kwargs
    ) -> Im2LatexEncoderOutput:
        self._pixel_mask = pixel_mask
        try:
            features = self.projection(self.trunk(pixel_values)[-1])
        finally:
            self._pixel_mask = None
        _, dim, height, width = features.shape
        features = features + position_encoding_2d(height, width, dim, features.device, features.dtype)
        return Im2LatexEncoderOutput(
            last_hidden_state=self.layer_norm(features.flatten(2).transpose(1, 2)),
            attention_mask=None if pixel_mask is None else cell_mask(pixel_mask, height, width).flatten(1),
        )


def set_stem_pool_stride(trunk: nn.Module, stride: int | list[int]) -> None:
    """Give the trunk's stem max-pool (a ResNet's `maxpool`) this stride: (height, width), or one for both."""
    stride = tuple(stride) if isinstance(stride, (list, tuple)) else (stride, stride)
    if stride == (2, 2):
        return
    pool = getattr(trunk, "maxpool", None)
    if not isinstance(pool, nn.MaxPool2d) or len(stride) != 2 or not set(stride) <= {1, 2}:
        raise ValueError(f"stem_pool_stride {list(stride)}: needs a trunk with a stem max-pool, and strides 1 or 2")
    trunk.maxpool = nn.MaxPool2d(pool.kernel_size, stride=stride, padding=pool.padding)


def cell_mask(pixel_mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(batch, height, width) bool: which cells of a height×width grid over the images hold image pixels.

    Images are padded on the right and bottom, so a cell is valid when it starts inside its image.
    """
    stride_h, stride_w = pixel_mask.shape[1] / height, pixel_mask.shape[2] / width
    valid_h = torch.ceil(pixel_mask.any(dim=2).sum(dim=1) / stride_h)
    valid_w = torch.ceil(pixel_mask.any(dim=1).sum(dim=1) / stride_w)
    rows = torch.arange(height, device=pixel_mask.device)[None, :, None] < valid_h[:, None, None]
    cols = torch.arange(width, device=pixel_mask.device)[None, None, :] < valid_w[:, None, None]
    return rows & cols


class Im2LatexAttention(nn.Module):
    """Multi-head attention that reads and writes its keys/values in an `EncoderDecoderCache`."""

    def __init__(self, config: Im2LatexConfig, layer_idx: int, is_cross_attention: bool):
        super().__init__()
        self.num_heads = config.decoder_attention_heads
        self.head_dim = config.d_model // self.num_heads
        self.layer_idx = layer_idx
        self.is_cross_attention = is_cross_attention
        self.dropout = config.attention_dropout
        self.q_proj = nn.Linear(config.d_model, config.d_model)
        self.k_proj = nn.Linear(config.d_model, config.d_model)
        self.v_proj = nn.Linear(config.d_model, config.d_model)
        self.out_proj = nn.Linear(config.d_model, config.d_model)

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        return states.view(*states.shape[:2], self.num_heads, self.head_dim).transpose(1, 2)

    def _keys_values(
        self, hidden_states: torch.Tensor, memory: torch.Tensor | None, cache: EncoderDecoderCache | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_cross_attention:
            keys, values = self._split_heads(self.k_proj(hidden_states)), self._split_heads(self.v_proj(hidden_states))
            if cache is not None:
                keys, values = cache.self_attention_cache.update(keys, values, self.layer_idx)
            return keys, values
        if cache is not None and cache.is_updated.get(self.layer_idx):
            layer = cache.cross_attention_cache.layers[self.layer_idx]
            return layer.keys, layer.values
        keys, values = self._split_heads(self.k_proj(memory)), self._split_heads(self.v_proj(memory))
        if cache is not None:
            keys, values = cache.cross_attention_cache.update(keys, values, self.layer_idx)
            cache.is_updated[self.layer_idx] = True
        return keys, values

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
    ) -> torch.Tensor:
        queries = self._split_heads(self.q_proj(hidden_states))
        keys, values = self._keys_values(hidden_states, memory, cache)
        dtype = queries.dtype
        if queries.device.type == "cpu" and dtype == torch.bfloat16:
            # PyTorch's CPU attention kernel runs 2-6x slower in bf16 than in fp32 at this model's sizes (forward
            # and backward; measured with torch 2.14 on an AMX Xeon), so under bf16 autocast it runs in fp32
            queries, keys, values = queries.float(), keys.float(), values.float()
        attended = F.scaled_dot_product_attention(
            queries, keys, values, attn_mask=attention_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(attended.to(dtype).transpose(1, 2).reshape(*hidden_states.shape))


class Im2LatexDecoderLayer(nn.Module):
    """Pre-norm Transformer decoder layer: self-attention, cross-attention to the image, feed-forward."""

    def __init__(self, config: Im2LatexConfig, layer_idx: int):
        super().__init__()
        self.self_attn = Im2LatexAttention(config, layer_idx, is_cross_attention=False)
        self.cross_attn = Im2LatexAttention(config, layer_idx, is_cross_attention=True)
        self.self_attn_layer_norm = nn.LayerNorm(config.d_model)
        self.cross_attn_layer_norm = nn.LayerNorm(config.d_model)
        self.final_layer_norm = nn.LayerNorm(config.d_model)
        self.feed_forward = nn.Sequential(
            nn.Linear(config.d_model, config.decoder_ffn_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.decoder_ffn_dim, config.d_model),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        memory: torch.Tensor,
        self_attention_mask: torch.Tensor | None,
        memory_mask: torch.Tensor | None,
        cache: EncoderDecoderCache | None,
    ) -> torch.Tensor:
        hidden_states = hidden_states + self.dropout(
            self.self_attn(self.self_attn_layer_norm(hidden_states), self_attention_mask, cache=cache)
        )
        hidden_states = hidden_states + self.dropout(
            self.cross_attn(self.cross_attn_layer_norm(hidden_states), memory_mask, memory=memory, cache=cache)
        )
        return hidden_states + self.dropout(self.feed_forward(self.final_layer_norm(hidden_states)))


class Im2LatexDecoder(nn.Module):
    """Token embeddings + learned positions, decoder layers, final norm."""

    def __init__(self, config: Im2LatexConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.d_model)
        self.embed_scale = math.sqrt(config.d_model)
        self.layers = nn.ModuleList(Im2LatexDecoderLayer(config, i) for i in range(config.decoder_layers))
        self.layer_norm = nn.LayerNorm(config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        input_ids: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None,
        cache: EncoderDecoderCache | None,
    ) -> torch.Tensor:
        length = input_ids.shape[1]
        # The number of cached tokens: an int, or with a static cache a tensor (so that a compiled step has no guard on it)
        past_length = cache.get_seq_length() if cache is not None else 0
        # Keys a step attends over: past and new tokens, or with a static cache all of its slots, filled or not
        key_length = cache.self_attention_cache.get_mask_sizes(length, 0)[0] if cache is not None else length
        static = cache is not None and cache.self_attention_cache.is_compileable
        if key_length > self.embed_positions.num_embeddings:
            raise ValueError(
                f"a sequence (or static cache) of {key_length} tokens is longer than max_position_embeddings "
                f"({self.embed_positions.num_embeddings})"
            )
        positions = past_length + torch.arange(length, device=input_ids.device)
        hidden_states = self.dropout(self.embed_tokens(input_ids) * self.embed_scale + self.embed_positions(positions))
        # Each token attends to the keys up to its own position. A single new token over a dynamic cache attends to
        # all of them, so needs no mask.
        causal_mask = None
        if length > 1 or static:
            causal_mask = torch.arange(key_length, device=input_ids.device) <= positions[:, None]
        for layer in self.layers:
            hidden_states = layer(hidden_states, memory, causal_mask, memory_mask, cache)
        return self.layer_norm(hidden_states)


class Im2LatexPreTrainedModel(PreTrainedModel):
    config_class = Im2LatexConfig
    config: Im2LatexConfig
    base_model_prefix = "im2latex"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Kaiming init for convolutions (as timm's ResNet), small normal init for linear and embedding layers."""
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.init_std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=self.config.init_std)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm2d):
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)


class Im2LatexForConditionalGeneration(Im2LatexPreTrainedModel, GenerationMixin):
    """Formula image → LaTeX tokens. Use `generate(pixel_values, pixel_mask=..., num_beams=k)` to read images."""

    def __init__(self, config: Im2LatexConfig):
        super().__init__(config)
        self.encoder = Im2LatexImageEncoder(config)
        self.decoder = Im2LatexDecoder(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def get_encoder(self, modality: str | None = None) -> Im2LatexImageEncoder:
        return self.encoder

    def shift_labels_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs for teacher forcing: the start token followed by the labels (-100 → pad)."""
        decoder_input_ids = labels.new_full(labels.shape, self.config.decoder_start_token_id)
        decoder_input_ids[:, 1:] = labels[:, :-1]
        return decoder_input_ids.masked_fill(decoder_input_ids == -100, self.config.pad_token_id)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        pixel_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: EncoderDecoderCache | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch, channels, height, width)`): images from the image processor.
        pixel_mask (`torch.LongTensor` of shape `(batch, height, width)`): 1 for image pixels, 0 for batch padding;
            read by the encoder (when `encoder_outputs` are not given), which hands the decoder a feature mask.
        labels (`torch.LongTensor` of shape `(batch, length)`): target token ids, -100 where ignored; when given,
            `decoder_input_ids` default to the labels shifted right and the cross-entropy loss is returned.
        """
        if encoder_outputs is None:
            if pixel_values is None:
                raise ValueError("pass pixel_values or encoder_outputs")
            encoder_outputs = self.encoder(pixel_values, pixel_mask)
        memory = encoder_outputs[0]
        feature_mask = getattr(encoder_outputs, "attention_mask", None)
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self.shift_labels_right(labels)
        if decoder_input_ids is None:
            raise ValueError("pass decoder_input_ids or labels")

        use_cache = use_cache if use_cache is not None else (self.config.use_cache and labels is None)
        if use_cache and cache is None:
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        elif not use_cache:
            cache = None

        memory_mask = None if feature_mask is None else feature_mask[:, None, None, :]
        hidden_states = self.decoder(decoder_input_ids, memory, memory_mask, cache)
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return Seq2SeqLMOutput(loss=loss, logits=logits, cache=cache, encoder_last_hidden_state=memory)


__all__ = ["Im2LatexEncoderOutput", "Im2LatexForConditionalGeneration", "Im2LatexPreTrainedModel"]
