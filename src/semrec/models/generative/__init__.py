"""Generative recommendation with semantic IDs: item tokenizers (codes), an encoder-decoder
that generates the next item's code, and trie-constrained beam search."""
