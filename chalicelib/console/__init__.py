"""The operator console: a static single-page app served by the app itself, and its config (docs/CONSOLE.md)."""
