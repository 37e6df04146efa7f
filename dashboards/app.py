"""Streamlit entrypoint: ``streamlit run dashboards/app.py``.

One entrypoint with ``st.navigation``; the pages (functions in ``dashboards.views``)
shown depend on the signed-in user's role.
"""

import streamlit as st

from dashboards.session import current_user, sign_out, take_go_home
from dashboards.views import home_page, navigation_for

st.set_page_config(page_title="FMA music platform", page_icon=":musical_note:", layout="wide")
user = current_user()
if user is not None:
    st.sidebar.caption(f"Signed in as **{user.username}** ({user.role.value})")
    if st.sidebar.button("Log out", key="logout"):
        sign_out()
        st.rerun()
sections = navigation_for(user)
page = st.navigation(sections)
if take_go_home():
    st.switch_page(home_page(sections))
page.run()
