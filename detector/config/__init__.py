"""Site and watch-plan configuration: what a crew writes in TOML before an exam.

:mod:`~detector.config.site` (a site: position, buildings, exam sessions, whitelist, receivers,
plan) and :mod:`~detector.config.plan` (watch plans: bands, priority, dwell, revisit, and the hop
scheduler that follows them).
"""
