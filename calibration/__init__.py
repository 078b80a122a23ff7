"""Representative datasets for post-training quantization and QAT."""
