"""Names that become folders (suites, experiments): one safe path component each, checked before use."""

from __future__ import annotations

import re

from bench.core.fields import ConfigError

# A name that becomes a folder (results/<suite>/, mlartifacts/<experiment>/) is one plain path component:
# no separator, no "." or "..", nothing a shell or a file system treats specially, short enough for any of them.
NAME_ALLOWED = ("1 to 100 characters of A-Z a-z 0-9 . _ -, starting with a letter or a digit "
                "(the name becomes a folder)")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def is_safe_name(name: object) -> bool:
    return isinstance(name, str) and _SAFE_NAME.fullmatch(name) is not None


def check_name(setting: str, name: object) -> str:
    """``name`` if it is safe as a single path component, else :class:`ConfigError` naming ``setting``.

    >>> check_name("experiment", "rnn-bench")
    'rnn-bench'
    >>> check_name("experiment", "../../y")
    Traceback (most recent call last):
    ...
    bench.core.fields.ConfigError: experiment: '../../y'; allowed: 1 to 100 characters of A-Z a-z 0-9 . _ -, starting \
with a letter or a digit (the name becomes a folder)
    """
    if is_safe_name(name):
        return name
    raise ConfigError([f"{setting}: {name!r}; allowed: {NAME_ALLOWED}"])
