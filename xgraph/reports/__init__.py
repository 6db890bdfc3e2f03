"""What xgraph tells a person or a program about a model: the summary, the graph drawing, the
spec diff, the op catalogue, parity reports, JSON documents and their schemas."""
