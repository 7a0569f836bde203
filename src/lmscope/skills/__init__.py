"""LAST: skill discovery from demonstrations with language-model segmentation and temporal variational
inference, on BabyAI.

``types`` (demos, segmentations, boundary F1), ``demos`` (expert demonstrations from minigrid's BabyAI bot),
``segment`` (LM segmentation and its ablations), ``model`` / ``train`` (the temporal variational inference
model on the shared training loop), ``transfer`` (skills as temporally extended actions on new levels).
"""
