"""The debrief report: pure rendering from the journal to HTML, Markdown and JSON."""
