"""Processor: the image processor and the LaTeX tokenizer behind one object."""

from __future__ import annotations

import torch
from transformers import BatchFeature, ProcessorMixin

from .preprocessing import ImageLike


class Im2LatexProcessor(ProcessorMixin):
    """`processor(images=..., text=...)` gives `pixel_values`, `pixel_mask` and `labels` (for training), or
    `decoder_input_ids` (a prompt for `generate`, as `pipeline("image-text-to-text")` asks);
    `processor.batch_decode(generated_ids)` gives LaTeX strings."""

    def __init__(self, image_processor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, tokenizer, **kwargs)

    def __call__(
        self,
        images: ImageLike | list[ImageLike] | None = None,
        text: str | list[str] | None = None,
        output_labels: bool | None = None,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Images → `pixel_values` and `pixel_mask` (torch tensors); with them, text → `labels` or a decoder prompt.

        - `output_labels=True`: `labels`, the target of each image (its tokens, then ``</s>``; padding -100),
          one text per image. For training: `model(**inputs).loss`.
        - `output_labels=False`: `decoder_input_ids`, the decoder start token then the text's tokens: the prompt
          that `generate` continues. ``""`` reads from the start, like `generate` without a prompt; one string
          is the prompt of every image, a list gives one per image (with as many tokens each).
        - By default, `labels`, unless `return_tensors` is given, as transformers' pipelines do: so
          ``pipeline("image-text-to-text", model=...)(images=..., text="")`` reads the images.

        Text alone gives the tokenizer's `input_ids` (with ``</s>``) and `attention_mask`.
        """
        if images is None and text is None:
            raise ValueError("pass images, text or both")
        if return_tensors not in (None, "pt"):
            raise ValueError(f"{type(self).__name__} returns torch tensors only (return_tensors='pt')")
        if images is None:
            return BatchFeature(dict(self.tokenizer(text, padding=True, return_tensors="pt")))
        inputs = BatchFeature(dict(self.image_processor(images, return_tensors="pt")))
        if text is None:
            return inputs
        if output_labels is None:
            output_labels = return_tensors is None
        if output_labels:
            encodings = self.tokenizer(text, padding=True, return_tensors="pt")
            inputs["labels"] = encodings["input_ids"].masked_fill(encodings["attention_mask"] == 0, -100)
        else:
            inputs["decoder_input_ids"] = self.decoder_prompt(text, len(inputs["pixel_values"]))
        return inputs

    def decoder_prompt(self, text: str | list[str], batch_size: int) -> torch.Tensor:
        """`decoder_input_ids` of shape (batch_size, 1 + prompt tokens): the decoder start token, then the text's."""
        texts = [text] * batch_size if isinstance(text, str) else list(text)
        if len(texts) != batch_size:
            raise ValueError(f"{len(texts)} prompts for {batch_size} images: pass one string, or one per image")
        start = self.tokenizer.bos_token_id  # the decoder start token
        prompts = [[start, *ids] for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        if len({len(prompt) for prompt in prompts}) > 1:
            raise ValueError("the prompts of one batch must have as many tokens each; read them one call per prompt")
        return torch.tensor(prompts, dtype=torch.long)

    def batch_decode(self, sequences, skip_special_tokens: bool = True, **kwargs) -> list[str]:
        return self.tokenizer.batch_decode(sequences, skip_special_tokens=skip_special_tokens, **kwargs)

    def decode(self, sequence, skip_special_tokens: bool = True, **kwargs) -> str:
        return self.tokenizer.decode(sequence, skip_special_tokens=skip_special_tokens, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return self.image_processor.model_input_names + ["decoder_input_ids", "labels"]


__all__ = ["Im2LatexProcessor"]
