"""The LaTeX tokenizer: a `tokenizers` word-level model over im2latex-style LaTeX tokens.

The pre-tokenizer splits with `latex.LATEX_TOKEN_PATTERN`, so commands (``\\frac``), sized delimiters
(``\\left(``) and environment markers stay whole. Decoding joins tokens with single spaces, which keeps
``\\alpha b`` apart and gives the im2latex-100k normalized format.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .latex import LATEX_TOKEN_PATTERN

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN]  # ids 0, 1, 2, 3


def train_latex_tokenizer(formulas: Iterable[str], min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """Learn the token vocabulary of `formulas` and return it as a transformers fast tokenizer.

    Encoding appends ``</s>`` (the decoder's target ends with it); the decoder start token is ``<s>``.
    """
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(LATEX_TOKEN_PATTERN), behavior="removed", invert=True)
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=min_frequency)
    tokenizer.train_from_iterator(formulas, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS_TOKEN}", special_tokens=[(EOS_TOKEN, tokenizer.token_to_id(EOS_TOKEN))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
