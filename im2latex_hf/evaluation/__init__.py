"""Evaluation of a model: on im2latex-100k and its held-out rows (`evaluate`, `im2latex evaluate`) and on the users'
benchmark of well-known formulas in many looks (`user_benchmark`)."""
