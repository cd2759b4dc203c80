"""The faces of the toolkit: the ``packrat`` CLI (:mod:`ui.cli`), the Streamlit dashboard
(:mod:`ui.dashboard`) and the static HTML reports (:mod:`ui.reports`); nothing in the library
imports them."""

#: The distribution (``name`` in pyproject.toml) that installs every package of this repository.
DISTRIBUTION = "packrat-toolkit"
