"""Packrat dashboard (Streamlit): `packrat ui` or `make ui` serves it on 127.0.0.1.

Pages (one module each under ui/pages/): Profiles, Planner, Simulator, Verification,
Hardware. Each page calls the toolkit's public functions and only draws; a page whose
part of the toolkit has not landed yet says so (detected at run time).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # `streamlit run ui/app.py` from a fresh clone without an install
    sys.path.insert(0, str(ROOT))

from ui import dashboard_state as state  # noqa: E402

state.use_app_navigation()
st.set_page_config(page_title="Packrat toolkit", page_icon=":material/memory:", layout="wide")
state.keep_widgets()

PAGES = [
    st.Page(str(HERE / "pages" / "profiles.py"), title="Profiles", icon=":material/grid_on:", url_path="profiles", default=True),
    st.Page(str(HERE / "pages" / "planner.py"), title="Planner", icon=":material/dashboard_customize:", url_path="planner"),
    st.Page(str(HERE / "pages" / "simulator.py"), title="Simulator", icon=":material/timeline:", url_path="simulator"),
    st.Page(str(HERE / "pages" / "verification.py"), title="Verification", icon=":material/verified:", url_path="verification"),
    st.Page(str(HERE / "pages" / "hardware.py"), title="Hardware", icon=":material/developer_board:", url_path="hardware"),
]

page = st.navigation(PAGES)

profile = state.current_profile()
with st.sidebar:
    st.markdown("### Packrat toolkit")
    st.caption("Latency-optimal multi-instance DNN serving on CPU servers.")
    st.markdown(f"**Profile:** {profile.label()}")
    st.caption(state.profile_origin())
    if profile.synthetic:
        st.caption(":orange[synthetic: a formula, not a measurement]")

page.run()
