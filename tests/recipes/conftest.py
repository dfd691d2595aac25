"""The browser of the tools' tests, for the recipes that run in one."""

from tests.tools.conftest import chromium

__all__ = ["chromium"]
