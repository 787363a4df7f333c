"""Trainers: IPPO/MAPPO (`ppo.py`, driven by `run.py`) and COMPASS latent training
(`compass.py`), sharing one outer loop (`loop.py`) and the PPO pieces of `ceiling.policies.ppo`."""
