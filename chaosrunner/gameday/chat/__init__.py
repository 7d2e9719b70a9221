"""Chat-ops: the team runs the gameday from Slack or Mattermost, and the channel hears the run.

An adapter like the terminal and web consoles: slash commands come in through
the run's server and become marks through ``gameday.marks`` (the same
validation as ``chaosrunner mark``); what the run does goes out to the
channel from the runner's events, in a thread of its own, never on the
revert path. ``slack_api`` is the one module that imports slack_sdk.
"""
