"""The intermediate representation: the graph a spec compiles to, and the analyses every later
stage reads (structure checks, shapes, parameter and MAC counts)."""
