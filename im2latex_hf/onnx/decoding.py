"""Greedy and beam search in numpy over a one-step decoder, with transformers' `generate` semantics.

`step(tokens, reorder)` runs the decoder for one new token per sequence, after reordering its cache
rows by ``reorder`` (None: keep), and returns float32 logits (rows, vocab). The beam search follows
`GenerationMixin._beam_search` (transformers 5): the top 2·k continuations per step, finished hypotheses
scored by log-probability over length ** ``length_penalty``, and its early-stop heuristic
(``early_stopping=False``), so it returns the tokens `generate(num_beams=k)` returns.

Both return ``(sequences, token_log_probs)``: the token ids, and the log-probability the model gave each
generated token (NaN after the end), which `confidence` turns into a reading's confidence.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Step = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
NEG_INF = np.float32(-1.0e9)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values along the last axis, largest first (first index among equals)."""
    return np.argsort(-values, axis=-1, kind="stable")[..., :k]


def greedy_search(
    step: Step, batch_size: int, start_id: int, eos_id: int, pad_id: int, max_new_tokens: int
) -> tuple[np.ndarray, np.ndarray]:
    """(batch, 1 + generated) token ids: the start token, then the most likely token until ``eos_id`` (then
    ``pad_id``); and (batch, generated) their log-probabilities."""
    sequences = np.full((batch_size, 1), start_id, dtype=np.int64)
    token_log_probs = np.zeros((batch_size, 0), dtype=np.float32)
    unfinished = np.ones(batch_size, dtype=bool)
    for _ in range(max_new_tokens):
        log_probs = log_softmax(step(sequences[:, -1], None).astype(np.float32))
        tokens = log_probs.argmax(axis=-1)
        chosen = np.where(unfinished, log_probs[np.arange(batch_size), tokens], np.nan).astype(np.float32)
        tokens = np.where(unfinished, tokens, pad_id)
        sequences = np.concatenate([sequences, tokens[:, None]], axis=1)
        token_log_probs = np.concatenate([token_log_probs, chosen[:, None]], axis=1)
        unfinished &= tokens != eos_id
        if not unfinished.any():
            break
    return sequences, token_log_probs


def beam_search(
    step: Step,
    batch_size: int,
    num_beams: int,
    start_id: int,
    eos_id: int,
    pad_id: int,
    max_new_tokens: int,
    num_return_sequences: int = 1,
    length_penalty: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(batch · num_return_sequences, 1 + generated) token ids of the best finished hypotheses, best first, and
    (batch · num_return_sequences, generated) their tokens' log-probabilities.

    ``step`` sees batch · num_beams rows (each image's beams together).
    """
    b, k, max_length = batch_size, num_beams, 1 + max_new_tokens
    keep = 2 * k  # top continuations gathered per step: enough for k to go on even if k of them end
    rows = np.arange(b)[:, None]
    # transformers fills unused positions with `pad_token_id or eos_token_id`: with pad id 0, the eos id.
    running = np.full((b, k, max_length), pad_id or eos_id, dtype=np.int64)
    running[:, :, 0] = start_id
    finished_sequences = running.copy()
    running_scores = np.zeros((b, k), dtype=np.float32)
    running_scores[:, 1:] = NEG_INF  # all beams start equal: only the first may expand at step one
    finished_scores = np.full((b, k), NEG_INF, dtype=np.float32)
    is_finished = np.zeros((b, k), dtype=bool)
    running_parents = np.full((b, k, max_new_tokens), -1, dtype=np.int64)
    finished_parents = running_parents.copy()
    running_token_log_probs = np.zeros((b, k, max_new_tokens), dtype=np.float32)
    finished_token_log_probs = running_token_log_probs.copy()
    improvable = np.ones((b, 1), dtype=bool)
    reorder = None
    for cur_len in range(1, max_length):
        token_log_probs = log_softmax(step(running[:, :, cur_len - 1].reshape(-1), reorder).astype(np.float32))
        token_log_probs = token_log_probs.reshape(b, k, -1)
        log_probs = (token_log_probs + running_scores[:, :, None]).reshape(b, -1)
        vocab_size = log_probs.shape[1] // k
        candidates = top_k(log_probs, keep)
        candidate_scores = np.take_along_axis(log_probs, candidates, axis=1)
        beam, token = candidates // vocab_size, candidates % vocab_size
        candidate_sequences = running[rows, beam]
        candidate_sequences[:, :, cur_len] = token
        candidate_parents = running_parents[rows, beam]
        candidate_parents[:, :, cur_len - 1] = beam + rows * k
        candidate_token_log_probs = running_token_log_probs[rows, beam]
        candidate_token_log_probs[:, :, cur_len - 1] = token_log_probs[rows, beam, token]
        ends = (token == eos_id) | (cur_len + 1 >= max_length)

        # Beams that go on: the best k candidates that did not just end.
        going_on = candidate_scores + ends * NEG_INF
        chosen = top_k(going_on, k)
        running = candidate_sequences[rows, chosen]
        running_scores = np.take_along_axis(going_on, chosen, axis=1)
        running_parents = candidate_parents[rows, chosen]
        running_token_log_probs = candidate_token_log_probs[rows, chosen]

        # Finished hypotheses: the best k so far, among the old ones and the top-k candidates that just ended.
        just_finished = ends.copy()
        just_finished[:, k:] = False
        scores = candidate_scores / np.float32(cur_len**length_penalty)
        scores = scores + (~improvable) * NEG_INF + (~just_finished) * NEG_INF
        merged_scores = np.concatenate([finished_scores, scores], axis=1)
        best = top_k(merged_scores, k)
        finished_sequences = np.concatenate([finished_sequences, candidate_sequences], axis=1)[rows, best]
        finished_parents = np.concatenate([finished_parents, candidate_parents], axis=1)[rows, best]
        finished_token_log_probs = np.concatenate([finished_token_log_probs, candidate_token_log_probs], axis=1)
        finished_token_log_probs = finished_token_log_probs[rows, best]
        is_finished = np.concatenate([is_finished, just_finished], axis=1)[rows, best]
        finished_scores = np.take_along_axis(merged_scores, best, axis=1)

        reorder = running_parents[:, :, cur_len - 1].reshape(-1)
        # Stop when no running beam can beat the worst finished one (at its current length), or all ended.
        best_running = running_scores[:, :1] / np.float32(cur_len**length_penalty)
        worst_finished = np.where(is_finished, finished_scores.min(axis=1, keepdims=True), NEG_INF)
        improvable &= (best_running > worst_finished).any(axis=-1, keepdims=True)
        if not improvable.any() or ends.all():
            break
    kept = finished_parents[:, :num_return_sequences] >= 0
    generated = int(kept.sum(axis=-1).max())
    sequences = finished_sequences[:, :num_return_sequences, : 1 + generated].reshape(b * num_return_sequences, -1)
    log_probs = np.where(kept, finished_token_log_probs[:, :num_return_sequences], np.nan)[:, :, :generated]
    return sequences, log_probs.reshape(b * num_return_sequences, -1).astype(np.float32)


def confidence(token_log_probs: np.ndarray) -> dict[str, np.ndarray]:
    """Per reading (rows of `greedy_search`/`beam_search` log-probabilities, NaN past the end): the sequence's
    log-probability, and the mean and the least probability of its tokens (the end token included)."""
    tokens = ~np.isnan(token_log_probs)
    count = np.maximum(tokens.sum(axis=1), 1)
    token_log_probs = np.where(tokens, token_log_probs, 0.0)
    probs = np.exp(token_log_probs)
    return {
        "log_prob": token_log_probs.sum(axis=1),
        "mean_token_prob": np.where(tokens, probs, 0.0).sum(axis=1) / count,
        "min_token_prob": np.where(tokens, probs, 1.0).min(axis=1, initial=1.0),
    }
