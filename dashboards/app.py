"""Streamlit entrypoint: ``streamlit run dashboards/app.py``.

One entrypoint with ``st.navigation``; the pages (functions in ``dashboards.pages``)
shown depend on the signed-in user's role.
"""

import streamlit as st

from dashboards.pages import navigation_for
from dashboards.session import current_user, sign_out

st.set_page_config(page_title="FMA music platform", page_icon=":musical_note:", layout="wide")
user = current_user()
if user is not None:
    st.sidebar.caption(f"Signed in as **{user.username}** ({user.role.value})")
    if st.sidebar.button("Log out", key="logout"):
        sign_out()
        st.rerun()
st.navigation(navigation_for(user)).run()
