"""The TF-free runtime: the ONNX step model, its sampler and beam search, and generation."""
