"""MCNet (ICCV 2023): the networks, checkpoint loading, keypoint normalisation, the animator."""
