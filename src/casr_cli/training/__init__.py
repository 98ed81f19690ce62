"""Training loops for the small CPU-trainable casr components."""
