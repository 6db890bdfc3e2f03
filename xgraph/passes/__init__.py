"""Passes over the graph IR: structural checks, shape inference, parameter and MAC counts."""
