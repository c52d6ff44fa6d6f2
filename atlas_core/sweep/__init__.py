"""Scripted Optuna studies: define-by-run search spaces over hyperparameters and plugins.

A study file (see ``sweeps/``) defines ``space(trial, config)``, which picks values with
``trial.suggest_*`` and writes them into the trial's RunConfig; ``choose_plugins`` makes
the enabled plugin set one categorical parameter. ``atlas sweep STUDY.py`` runs it.
"""

from atlas_core.sweep.space import choose_plugins, installed_plugins, set_param

__all__ = ["choose_plugins", "installed_plugins", "set_param"]
