"""Session files: recording every turn, loading it back, and what is built on them."""
