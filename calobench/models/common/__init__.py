"""Parts that every model plugin can share: layers, conditioning, the training loop."""
