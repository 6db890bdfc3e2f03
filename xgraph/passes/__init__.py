"""Rewrites of the analysed graph for inference builds (`--optimize`): dropping identities,
folding BatchNorm into convolutions, fusing activations; each keeps the function computed."""
