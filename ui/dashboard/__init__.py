"""The Streamlit dashboard: ``app.py`` (the entry script), ``pages/``, and its data, chart,
job and state helpers."""
