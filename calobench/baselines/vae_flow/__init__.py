"""A conditional VAE and a CaloFlow-style normalizing flow on voxel showers (docs/models-vae-flow.md)."""
