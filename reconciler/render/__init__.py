"""Views of a plan: pure functions from `Plan` to text, JSON or Markdown."""
