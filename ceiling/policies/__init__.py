"""Policies and the RL pieces that training and search share: the network registry and `act`,
the one episode scan and zero-shot evaluation, the PPO loss and GAE, the latent prior, and
checkpoints (plain, versioned, never pickled)."""
