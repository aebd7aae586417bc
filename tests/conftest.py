"""Shared pytest setup: plugins every test module can use."""

pytest_plugins = ["tests.services", "tests.gcs_emulator", "tests.corpora"]  # services first: corpora imports it
