"""Hydra keeper: records every report, applies thresholds, keeps images, raises alarms.

Rules it applies (see ``verdicts.py``, ``transitions.py``, ``alarms.py`` and ``keeping.py``):

- Verdict = the label with the highest weight; confirmed when its weight is at or above the
  label's threshold for the model, or ``HYDRA_DEFAULT_THRESHOLD`` (0.5) for a label without
  one. NO_MODEL reports read "NoModel", failed or malformed ones "Error"; never confirmed.
- The monitoring log holds unconfirmed and confirmed alarm verdicts (OK reports only), with
  ``transition`` set when the plot type's (verdict, confirmed) changed from its previous
  inference (``verdict`` / ``confirmation``), when a chunk was skipped within a run
  (``chunk_skip``), or for a plot type's first inference (``first``); kinds join with "+".
  A late report (older than the plot type's latest) neither updates run_time nor counts as
  a transition.
- Images kept for labelling: every confirmed alarm verdict (``bad``), every unconfirmed one
  (``unconfirmed``), and an unbiased sample of OK and NoModel reports at the plot type's
  collect percent (``unbiased``; never a second one for the same plot type, run and chunk).
- Alarms: confirmed alarm verdicts while the latest run condition's beam current is above
  ``HYDRA_BEAM_CURRENT_THRESHOLD``, or when no beam current is known.
- A plot type missing from the database (deleted after the feeder sent the order) is
  re-created rather than the report dropped; a model id missing from the database is
  recorded as no model, with default thresholds.
"""
