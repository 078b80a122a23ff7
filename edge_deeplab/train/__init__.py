"""Training: data pipeline, losses, float training and QAT."""
