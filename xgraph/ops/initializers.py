"""Names of the kernel initialisers a spec or `--init` may choose (Keras's names)."""

KERNEL_INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal")
DEFAULT_INITIALIZER = "glorot_uniform"
