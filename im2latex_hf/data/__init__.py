"""Data: im2latex-100k as a `datasets` dataset (`im2latex`), LaTeX normalization (`normalization`), formula
generation (`formula_generation`) and the rendered training corpus (`corpus`)."""
