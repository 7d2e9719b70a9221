"""The debrief report: pure rendering from the journal (plus Prometheus ranges) to HTML, Markdown and JSON.

What a facilitator puts on the screen the morning after, laid out as a
blameless postmortem. One concept per module:

``model``        the report's data, assembled once: debrief + ranges fetched once
``series``       a panel per expression, the query step, thinning, summaries
``timeline``     system and responder events interleaved, in the order they happened
``impact``       duration, failed requests, error budget - derived, or "not measurable"
``postmortem``   the five-whys prompts, seeded from the run
``chart``        the SVG charts (run and trend), written by hand
``history``      a scenario's runs across the state folder; figures kept per run
``render_env``   the jinja2 environment and the shared filters (``fmt`` spells everything)
``html``, ``markdown``, ``json_schema``   the three formats (JSON versioned, with its schema)
``redact``       secrets scrubbed from every output before it is written
``writer``       where reports go; ``write_run_report`` is the one call the CLI makes
``sample``       a synthetic run with known numbers, for tests and the benchmark

Nothing here prints or imports click/rich; matplotlib is not used at all.
"""
