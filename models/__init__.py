"""Lightning modules, their networks, the training data module, training and checkpoints. Never imports
prefect (DESIGN.md); the networks in :mod:`models.components` never import Lightning.

Models (a LightningModule receives or builds its net from its config and keeps training logic only):

- :mod:`models.components`: the plain ``nn.Module`` parts: :mod:`~models.components.layers`,
  :mod:`~models.components.dieleman` (``DielemanFrame``, ``DielemanNet``), :mod:`~models.components.deep_hits`
  (``RealBogusInput``, ``DeepHitsNet``).
- :mod:`models.stamp_module`: ``StampModule``, the LightningModule base of the models (config, hyper-parameters,
  the net, optimiser, epoch metrics).
- :mod:`models.morphology`: ``MorphologyModel`` (Dieleman et al. 2015), ``lr_factor``, ``rmse_by_question``.
- :mod:`models.realbogus`: ``RealBogusModel`` (Cabrera-Vives et al. 2017 Deep-HiTS) with calibration and the
  threshold at a false positive rate; :mod:`models.realbogus_metrics`: ``RealBogusMetrics``,
  ``fit_temperature``, ``nll``, ``ece``.
- :mod:`models.presets`: ``PresetConfig``, the base of the configs; :mod:`models.morphology_config`
  (``MorphologyConfig``, ``PRESETS``) and :mod:`models.realbogus_config` (``RealBogusConfig``, ``PRESETS``).

Training and its outputs:

- :mod:`models.data`: splits by object, the chunk-wise batch sampler, the store dataset, ``StampDataModule``.
- :mod:`models.train`: ``train_model`` and ``python -m models.train``; :mod:`models.fitting`: ``FitOptions``
  and ``fit_and_evaluate`` (the deterministic trainer); :mod:`models.train_options`: the shared command-line
  options; :mod:`models.budget`: CPU-time budgets (``CpuTimeLimit``, ``StepClock``).
- :mod:`models.checkpoints`: checkpoints that never run code, with ``model_card.json`` (``MODEL_CLASSES``,
  ``save_checkpoint``, ``load_checkpoint``).
- :mod:`models.lineage`: fine-tuning from a parent checkpoint (``Parent``, ``read_parent``: same task, preset,
  channels and stamp size; the card's ``init_from``).
- :mod:`models.calibration`: a real-bogus checkpoint recalibrated on a labelled store (temperature and
  threshold at a false positive rate) as a new model version (``calibrate_checkpoint``).
- :mod:`models.alert_scoring`: the broker-facing real-bogus scorer of a process (``score_alerts``).
"""
