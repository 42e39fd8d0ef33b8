"""The one kind of failure the pipeline expects: input it refuses.

An `InputRefused` says in one line what is wrong and the way out, and is raised before
anything changes. The flows turn it into a failed run with that line as its message,
without a traceback: nothing is broken, the input is.
"""

from __future__ import annotations


class InputRefused(ValueError):
    """Input the pipeline refuses; the message is one line, and nothing was changed."""
