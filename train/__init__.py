"""GSPO learners on TRL for GRPO / RS² / MARS² training on the search environment.

Modules (imported on demand; ``import train`` alone pulls in nothing heavy):

- ``train.config``     `Mars2TrainConfig`: every option, from YAML and ``mars2 train`` flags
- ``train.buffer``     `NodeSample`, `SampleBuffer`: per-agent samples waiting for an update
- ``train.batch``      `build_batch`: samples -> TRL's padded tensors
- ``train.tis``        truncated importance sampling weights
- ``train.trainer``    `Mars2GRPOTrainer`: `trl.GRPOTrainer` fed from the buffer
- ``train.learner``    `Learner`: one agent's model, optimizer, schedule, buffer and updates
- ``train.loop``       `TrainLoop` / `train`: rollouts with BatchedSearch, async updates, checkpoints
- ``train.checkpoint`` checkpoint directories, RNG states, resume
- ``train.tiny``       a tiny random Llama + byte tokenizer for fast tests and examples
"""
