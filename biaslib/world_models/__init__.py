"""The world's models trained and its generators measured: steps that use the world (data and a simulator,
:mod:`biaslib.world`) with the training loops and the interval kernel, which the world itself may not import.

- :mod:`~biaslib.world_models.tiny_pipeline_training`: training the tiny diffusion pipeline.
- :mod:`~biaslib.world_models.measure`: what the world's classifier reads in generated and mixed datasets.
- :mod:`~biaslib.world_models.fidelity`: does a generator show what its prompt asks?
"""
