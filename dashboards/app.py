"""Streamlit entrypoint: ``streamlit run dashboards/app.py``.

One entrypoint with ``st.navigation``; every page is a function in ``dashboards.pages``.
"""

import streamlit as st

from dashboards.pages import PAGES

st.set_page_config(page_title="FMA music platform", page_icon=":musical_note:", layout="wide")
st.navigation(PAGES).run()
