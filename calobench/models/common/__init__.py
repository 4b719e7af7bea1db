"""Parts that every model plugin can share: layers, shower transforms, condition encoding
(conditioning) and the one training loop (trainer)."""
