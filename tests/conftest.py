"""Shared pytest setup: plugins every test module can use."""

pytest_plugins = ["tests.gcs_emulator", "tests.corpora", "tests.services"]
