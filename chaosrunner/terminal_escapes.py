"""Text from people and libraries never drives a terminal.

A responder's note, an error message from a service or a scenario title is
shown on the facilitator's terminal. If it carries control sequences, the
terminal obeys them: ``ESC ] 0 ; title BEL`` renames the window, ``ESC [ 2 J``
clears the screen, ``ESC ] 8`` plants a hyperlink, a carriage return
overwrites the line with a forged one. ``strip_terminal_escapes`` removes every
escape sequence (CSI, OSC, DCS and friends, in their 7-bit and 8-bit
spellings) together with its payload, then every remaining C0/C1 control
character except newline and tab, and the Unicode bidirectional overrides
that make text read differently from what it holds.

It lives in the foundation so any adapter that shows text to people (the
consoles, a web page, a chat message) can use the same rule.
"""

from __future__ import annotations

import re

_ESCAPE_SEQUENCE = re.compile(
    r"""
      (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?            # CSI: colours, cursor, clear
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) .*? (?:\x07|\x1b\\|\x9c|$)  # OSC, DCS, SOS, PM, APC + payload
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                                     # any other escape
    """,
    re.VERBOSE | re.DOTALL,
)
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_terminal_escapes(text: str) -> str:
    """``text`` without escape sequences, control characters (but ``\\n``, ``\\t``) or bidi overrides."""
    return _CONTROL_CHARACTER.sub("", _ESCAPE_SEQUENCE.sub("", text))
