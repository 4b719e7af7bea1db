"""GANs: the STCF DCGAN, the BESIII GAN, the DarkSHINE NNLS + CGAN and a WGAN-GP (docs/models-gan.md)."""
