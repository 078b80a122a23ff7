"""NAS-lite: search space, latency table/predictor, accuracy proxy, search."""
