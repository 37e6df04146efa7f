"""The Streamlit app: the listeners' player and the analysts' dashboards."""
