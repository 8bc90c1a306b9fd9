"""The trainer's ``hydra`` commands, one module per command group.

``hydra_trainer.cli`` adds each group to the ``hydra`` application; what the commands share
(settings, the database session, error messages, audit rows) is in ``common``.
"""
