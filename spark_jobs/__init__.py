"""spark-submit entrypoints and the DataFrame functions they run."""
