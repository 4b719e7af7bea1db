"""Diffusion models: the BESIII DDPM U-Net and the HGCal score-SDE transformer (docs/models-diffusion.md)."""
