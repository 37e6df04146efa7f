"""Pages of the app, in navigation order."""

import streamlit as st

from dashboards.pages.platform import platform_status

PAGES = [st.Page(platform_status, title="Platform", icon=":material/monitor_heart:", url_path="platform")]
