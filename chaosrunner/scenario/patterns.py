"""Text shapes shared by the scenario models (and named in words by ``problems``)."""

URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
