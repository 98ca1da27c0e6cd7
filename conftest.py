"""Root conftest: settings shared by the whole suite.

The plugin itself is loaded by its ``pytest11`` entry point, never from here
(listing it in ``pytest_plugins`` too would register it twice).
"""

from hypothesis import settings

settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile("ci")
