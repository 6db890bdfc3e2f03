"""The PyTorch backend: graph -> nn.Module (NCHW), canonical weights <-> state dict, .pt2.

This package's `__init__` imports nothing of torch: its op rules (`xgraph_torch.rules`) are
read without torch; `xgraph_torch.backend` is where torch comes in.
"""
