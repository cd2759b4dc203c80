"""Packrat dashboard (Streamlit): `packrat ui` or `make ui` serves it on 127.0.0.1.

Pages (one module each under ui/dashboard/pages/): Profiles, Planner, Simulator, Verification,
Hardware. Each page calls the toolkit's public functions and only draws. Everything is
served from this machine (the favicon is a local file; nothing is fetched from the
internet). The current profile and each page's parameters live in the URL.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:  # `streamlit run ui/dashboard/app.py` from a fresh clone without an install
    sys.path.insert(0, str(ROOT))

from ui.dashboard import charts as charts  # noqa: E402 - after the sys.path entry above
from ui.dashboard import state as state  # noqa: E402

FAVICON = HERE / "favicon.png"


@st.cache_resource(show_spinner=False)
def job_server() -> bool:
    """The warm job server, started once per server process with the app (ui.dashboard.jobs)."""
    from ui.dashboard import jobs

    return jobs.warm()


state.use_app_navigation()
st.set_page_config(page_title="Packrat toolkit", page_icon=str(FAVICON), layout="wide")
state.keep_widgets()
if __name__ == "__main__":  # not in a worker process re-running the app as its main (__mp_main__)
    job_server()

# Profiles is the default page, served at "/"; Streamlit gives a default page no other
# URL, so a hidden page answers "/profiles" (a link people type) by switching to it with
# the same query string, instead of "Page not found".
PAGES = [
    st.Page(str(HERE / "pages" / "profiles.py"), title="Profiles", icon=":material/grid_on:", url_path="profiles-home",
            default=True),
    st.Page(str(HERE / "pages" / "planner.py"), title="Planner", icon=":material/dashboard_customize:", url_path="planner"),
    st.Page(str(HERE / "pages" / "simulator.py"), title="Simulator", icon=":material/timeline:", url_path="simulator"),
    st.Page(str(HERE / "pages" / "verification.py"), title="Verification", icon=":material/verified:", url_path="verification"),
    st.Page(str(HERE / "pages" / "hardware.py"), title="Hardware", icon=":material/developer_board:", url_path="hardware"),
    st.Page(str(HERE / "pages" / "sweep.py"), title="Sweep", icon=":material/stacked_line_chart:", url_path="sweep"),
]


def _to_profiles() -> None:
    st.switch_page(PAGES[0], query_params=st.query_params.to_dict())


page = st.navigation([*PAGES, st.Page(_to_profiles, title="Profiles", url_path="profiles", visibility="hidden")])

state.profile_from_url()
state.forget_profile_in_use()
page.run()

# axis titles and tick labels in the theme's text colour (Streamlit's light theme draws them
# in a grey of 3.7:1 on white; WCAG asks 4.5:1): one style for every chart of every page
st.html(f"<style>{charts.AXIS_TEXT_CSS}</style>")

# drawn after the page ran, so it names the profile the page just chose (not the one before)
state.sidebar()
state.publish_profile()
